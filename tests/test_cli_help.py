"""Every `crot` command, and `crot-tui`, answers --help with a description (issue 14)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine.cli import build_parser, main, subcommands

COMMANDS = sorted(subcommands(build_parser()))


def test_every_command_is_listed() -> None:
    for words in ("config", "config check", "config show", "config example", "config migrate", "config docs",
                  "config strategy", "replay", "analyze", "download", "optimize", "optimize run",
                  "optimize report", "optimize lookahead", "optimize example", "audit", "audit export",
                  "audit size", "watchdog"):
        assert words in COMMANDS


@pytest.mark.parametrize("words", COMMANDS)
def test_help_of_every_command(words: str, capsys) -> None:
    parser, one_line = subcommands(build_parser())[words]
    assert one_line, f"crot {words} has no line in its parent's --help"
    assert parser.description, f"crot {words} --help has no description"
    with pytest.raises(SystemExit) as done:
        main([*words.split(), "--help"])
    assert done.value.code == 0
    out = capsys.readouterr()
    assert f"usage: crot {words}" in out.out and "Traceback" not in out.err
    # the description is printed (argparse re-wraps it: compare the words)
    assert parser.description.split()[:4] == out.out.split("\n\n")[1].split()[:4]


def test_top_level_help_lists_every_command(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("config", "replay", "analyze", "download", "optimize", "audit", "watchdog"):
        assert f"\n    {name} " in out


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60)


def test_watchdog_help_is_its_own_not_the_bots() -> None:
    """`crot watchdog --help` (alone, with options, or before --) prints the watchdog's help and
    starts nothing; after -- it belongs to the command."""
    for argv in (["--help"], ["-h"], ["--stall", "5", "--help"], ["--help", "--", "crot-tui", "--no-ui"]):
        proc = _run("-m", "engine.cli", "watchdog", *argv)
        assert proc.returncode == 0, (argv, proc.stderr)
        assert proc.stdout.startswith("usage: crot watchdog"), argv
        assert "--stall SECONDS" in proc.stdout and "started pid" not in proc.stderr


def test_crot_tui_help() -> None:
    proc = _run("-m", "crot_tui", "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: crot-tui") and "CROT terminal dashboard" in proc.stdout
