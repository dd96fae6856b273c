#!/usr/bin/env bash
# Without systemd (e.g. inside tmux): keep the headless bot running from this folder.
#   tmux new -s crot 'ops/run-watchdog.sh'
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
exec crot watchdog -- crot-tui --no-ui
