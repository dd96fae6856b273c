"""`crot optimize run / report` on the bundled demo data (SOL, one-day walk-forward windows so a
trial is two short replays): worker processes sharing one SQLite storage, two separate
commands (two "machines") joining one study on a shared journal file, the report with its
out-of-sample figures, best.env written beside it and the user's .env never touched, secrets
never stored, and a study that refuses a worker running a different search."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest

from engine.research.cli import main
from engine.research.optimize import build_settings, open_storage
from engine.runtime.replay import run_replay
from engine.runtime.replay_data import parse_timerange
from engine.runtime.replay_metrics import report_dict
from engine.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
SECRET_KEY, SECRET = "abc123notarealkey", "zzz987notarealsecret"
SPACE = """\
[study]
symbols = ["SOL"]
timerange = "20240802-20240804"
folds = 1
train_days = 1
test_days = 1

[params]
HARD_STOP_LOSS_PCT = { low = 0.01, high = 0.03, step = 0.005 }
EMA_EXIT_RUNNER_TRAILING_PULLBACK = { low = 0.005, high = 0.02 }
"""
ENV = f"HTX_API_KEY={SECRET_KEY}\nHTX_API_SECRET={SECRET}\nCOOLDOWN_MINUTES_AFTER_CLOSE=20\n"


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["optimize", *args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """One study: 4 trials on 2 local worker processes, one SQLite file."""
    d = tmp_path_factory.mktemp("optimize")
    (d / "space.toml").write_text(SPACE)
    (d / ".env").write_text(ENV)
    (d / ".env").chmod(0o600)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(d)
        code, out, err = run("run", "space.toml", "--jobs", "2", "--trials", "4", "--seed", "7")
    assert code == 0, err
    storage = f"sqlite:///{d / 'optimize' / 'space' / 'study.db'}"
    study = optuna.load_study(study_name="space", storage=open_storage(storage))
    return d, out, study, storage


def test_local_workers_are_separate_processes_sharing_one_storage(local):
    d, out, study, _ = local
    trials = study.get_trials()
    assert 4 <= len(trials) <= 5  # the budget is the study's; two workers may overshoot by one
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    workers = {t.user_attrs["worker"] for t in trials}
    pids = {int(w.rsplit(":", 1)[1]) for w in workers}
    assert len(pids) == 2 and os.getpid() not in pids, workers
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert "2 local worker(s)" in out and "fold 1: train 2024-08-02 .. 2024-08-03, test .. 2024-08-04" in out


def test_a_trial_is_the_replay_of_its_windows(local):
    """The stored figures are what `crot replay` gives for those settings and windows."""
    d, _, study, _ = local
    t = study.best_trial
    settings = build_settings({"COOLDOWN_MINUTES_AFTER_CLOSE": "20"}, t.user_attrs["env"])
    start, end = parse_timerange("20240802-20240803")
    summary = asyncio.run(run_replay(settings, symbols=["SOL"], start_ms=start, end_ms=end))
    train = t.user_attrs["folds"][0]["train"]
    assert report_dict(summary)["overall"]["pnl"] == pytest.approx(train["pnl"])
    assert t.value == pytest.approx(train["sharpe"] or 0.0)
    assert train["trades"] == summary.trades


def test_report_lists_out_of_sample_figures_and_writes_best_env_not_env(local):
    d, out, study, _ = local
    res = d / "optimize" / "space"
    report = json.loads((res / "report.json").read_text())
    assert report["trials"]["total"] == len(study.get_trials())
    assert report["objectives"] == [{"name": "sharpe", "direction": "maximize", "label": "Sharpe"}]
    best = report["best"]
    assert [b["train"]["sharpe"] for b in best] == sorted((b["train"]["sharpe"] for b in best), reverse=True)
    for b in best:  # every listed trial carries its test-window (out-of-sample) figure
        assert set(b["test"]) == {"sharpe"} and b["folds"][0]["test"]["trades"] is not None
    assert report["winner"]["number"] == study.best_trial.number
    pf = report["walk_forward"]["per_fold"]
    assert len(pf) == 1 and pf[0]["trial"] == study.best_trial.number
    assert pf[0]["test"]["sharpe"] == pytest.approx(study.best_trial.user_attrs["test_values"][0])
    env_lines = [ln for ln in (res / "best.env").read_text().splitlines() if ln and not ln.startswith("#")]
    assert env_lines == [f"{k}={v}" for k, v in study.best_trial.user_attrs["env"].items()]
    assert (d / ".env").read_text() == ENV  # never touched
    assert sorted(p.name for p in d.iterdir()) == [".env", "optimize", "space.toml"]
    merged = d / "merged.env"  # the fragment is a valid part of a .env
    merged.write_text(ENV + "\n".join(env_lines) + "\n")
    s = load_settings(merged, missing_ok=False)
    assert s.side("long").hard_stop_loss_pct == float(study.best_trial.user_attrs["env"]["HARD_STOP_LOSS_PCT"])
    assert "best trials" in out and "walk-forward" in out and "best.env" in out


def test_secrets_never_reach_the_storage_or_the_results(local):
    d, out, _, _ = local
    for f in (d / "optimize" / "space").iterdir():
        data = f.read_bytes()
        assert SECRET_KEY.encode() not in data and SECRET.encode() not in data, f
    assert SECRET_KEY not in out


def test_report_command_and_choosing_another_trial(local):
    d, _, study, storage = local
    other = next(t for t in study.get_trials() if t.number != study.best_trial.number)
    code, out, err = run("report", "--study", "space", "--storage", storage, "--out", str(d / "optimize"),
                         "--trial", str(other.number))
    assert code == 0, err
    text = (d / "optimize" / "space" / "best.env").read_text()
    assert f"trial {other.number} (chosen with --trial)" in text
    assert f"HARD_STOP_LOSS_PCT={other.user_attrs['env']['HARD_STOP_LOSS_PCT']}" in text
    code, out, err = run("report", "--study", "space", "--storage", storage, "--trial", "999")
    assert code == 2 and "--trial 999: not a finished trial" in err and err.count("\n") == 1
    code, out, err = run("report", "--study", "nope", "--storage", storage)
    assert code == 2 and "--study nope: no such study" in err
    code, out, err = run("report", "--study", "space", "--out", str(d / "elsewhere"))
    assert code == 2 and "no study file" in err


def test_a_full_study_runs_no_more_trials(local, monkeypatch):
    d, _, study, _ = local
    before = len(study.get_trials())
    monkeypatch.chdir(d)
    code, out, err = run("run", "space.toml", "--jobs", "2", "--trials", "4")
    assert code == 0 and "0 trial(s) run here" in out
    assert len(optuna.load_study(study_name="space", storage=local[3]).get_trials()) == before


def test_a_worker_with_a_different_search_is_refused(local, monkeypatch):
    d, _, study, storage = local
    before = len(study.get_trials())
    monkeypatch.chdir(d)
    (d / "other.toml").write_text(SPACE.replace("high = 0.03", "high = 0.05"))
    code, out, err = run("run", "other.toml", "--study", "space", "--storage", storage)
    assert code == 2 and "is a different search (its space differ" in err and err.count("\n") == 1
    (d / "other.env").write_text("COOLDOWN_MINUTES_AFTER_CLOSE=30\n")
    code, out, err = run("run", "space.toml", "--env", "other.env", "--storage", storage)
    assert code == 2 and "its .env settings differ" in err
    code, out, err = run("run", "space.toml", "--timerange", "20240801-20240803", "--storage", storage)
    assert code == 2 and "walk-forward windows differ" in err
    assert len(optuna.load_study(study_name="space", storage=storage).get_trials()) == before
    assert not (d / "optimize" / "other").exists()


def test_two_commands_join_one_study_on_a_shared_journal(tmp_path):
    """What several machines do: the same command, each with its own worker, one storage."""
    (tmp_path / "space.toml").write_text(SPACE)
    storage = f"journal:{tmp_path / 'shared' / 'study.log'}"
    cmd = [sys.executable, "-m", "engine.research.cli", "optimize", "run", "space.toml", "--study", "shared",
           "--storage", storage, "--jobs", "1", "--trials", "4", "--env", "none.env"]
    (tmp_path / "none.env").write_text("")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen(cmd + ["--out", f"machine{i}", "--seed", str(10 * i)], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    study = optuna.load_study(study_name="shared", storage=open_storage(storage))
    trials = study.get_trials()
    assert 4 <= len(trials) <= 5 and sorted(t.number for t in trials) == list(range(len(trials)))
    assert {int(t.user_attrs["worker"].rsplit(":", 1)[1]) for t in trials} == {p.pid for p in procs}
    for i in range(2):  # each machine writes its own report of the shared study
        assert json.loads((tmp_path / f"machine{i}" / "shared" / "report.json").read_text())["trials"]["total"] >= 4


def test_pruned_trials_say_why(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rule.toml").write_text(SPACE.split("[params]")[0] + "[params]\nENTRY_MIN_SCORE = [0.09]\n")
    code, out, err = run("run", "rule.toml", "--jobs", "1", "--trials", "1")
    assert code == 2, out  # nothing finished: no report
    assert "pruned (ENTRY_MIN_SCORE, ENTRY_CROWDED_MIN_SCORE: ENTRY_MIN_SCORE (0.09) must be <=" in out
    assert "no finished trial yet (1 trials: 1 pruned; e.g. ENTRY_MIN_SCORE" in err and err.count("\n") == 1
    (tmp_path / "space.toml").write_text(SPACE)
    code, out, err = run("run", "space.toml", "--jobs", "1", "--trials", "1", "--min-trades", "1000")
    assert code == 2 and "fewer than --min-trades 1000" in out and "1 pruned" in err


@pytest.fixture
def postgres():
    """A throw-away PostgreSQL server on a Unix socket (no TCP), for as long as the test runs."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    pytest.importorskip("psycopg", reason="pip install 'crot[cluster]' for the PostgreSQL storage")
    base = Path(tempfile.mkdtemp(prefix="crot-pg-"))  # short: a socket path has ~100 characters
    as_server: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        as_server = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
    data = base / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # only names the socket file: the server listens on no TCP port
    subprocess.run([*as_server, initdb, "-D", str(data), "-U", "crot", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run([*as_server, pg_ctl, "-D", str(data), "-l", str(base / "server.log"), "-w", "-o",
                    f"-k {base} -h '' -p {port}", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://crot@/postgres?host={base}&port={port}"
    finally:
        subprocess.run([*as_server, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_local_workers_on_a_postgresql_storage(tmp_path, monkeypatch, postgres):
    """The multi-machine storage: an RDB server that every worker connects to."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "space.toml").write_text(SPACE)
    code, out, err = run("run", "space.toml", "--study", "pg", "--storage", postgres, "--jobs", "2", "--trials", "3")
    assert code == 0, err
    study = optuna.load_study(study_name="pg", storage=open_storage(postgres))
    trials = study.get_trials()
    assert 3 <= len(trials) <= 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    assert json.loads((tmp_path / "optimize" / "pg" / "report.json").read_text())["storage"].startswith("postgresql://")
