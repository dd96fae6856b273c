#!/usr/bin/env bash
# Without systemd (e.g. inside tmux): keep the headless bot running from this folder.
#   tmux new -s crot 'ops/run-watchdog.sh --live'     (or --paper; more crot-tui options may follow)
# With API keys in .env the mode must be given: crot-tui refuses to guess (exit 2).
set -euo pipefail
case "${1:-}" in
  --live|--paper|--demo) ;;
  *) echo "usage: ops/run-watchdog.sh --live|--paper [crot-tui options]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
. .venv/bin/activate
exec crot watchdog -- crot-tui --no-ui "$@"
