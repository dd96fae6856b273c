"""`crot optimize run`: an Optuna study over replays, on local worker processes or many machines.

The study lives in an Optuna storage: by default a SQLite file beside the results
(``optimize/<study>/study.db``); for several machines a shared PostgreSQL / MySQL URL, or a
journal file on a shared disk (``journal:PATH``). Every worker process, local or remote,
opens the same storage, loads the study by name and asks it for trials until the study holds
``trials`` of them, so the same command started on another machine joins the search (the
study's fingerprint refuses a worker whose space, windows, objectives, data or .env differ).

A trial suggests one value per searched setting, builds the settings from the user's .env
plus those values (a combination that breaks a cross-field rule is pruned, with the reason),
replays every walk-forward window (``walkforward``) on a fresh simulated account, and returns
the mean training figure of each objective; the test figures are stored beside it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import multiprocessing
import os
import re
import socket
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from engine.runtime.replay_data import utc
from engine.settings import Settings, SettingsError, lookup
from engine.settings.envfile import Assignment
from engine.settings.loader import SIDE_PREFIXES, settings_from_assignments

from .space import Space, SpaceError
from .walkforward import OBJECTIVES, Fold, objective_value

__all__ = [
    "StudyPlan", "StorageError", "build_settings", "check_conflicts", "data_signature", "open_storage",
    "redact", "run_study", "study_attrs", "trial_figures",
]

STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: figures kept per replayed window (from report_dict's "overall")
FIGURES = ("pnl", "pnl_pct", "sharpe", "sortino", "max_drawdown_pct", "profit_factor", "trades", "win_rate",
           "trade_fees", "funding")
RDB_SCHEMES = ("sqlite", "postgresql", "mysql")


class StorageError(ValueError):
    """A storage that cannot be opened or a study that cannot be joined; one line."""


@dataclass(frozen=True)
class StudyPlan:
    """Everything a worker needs (picklable: sent to each worker process)."""

    study: str
    storage: str  # URL, or journal:PATH
    space: Space
    objectives: tuple[str, ...]
    folds: tuple[Fold, ...]
    data_dir: str
    symbols: tuple[str, ...]
    base_env: dict[str, str]  # the user's .env assignments, raw (secrets stay in memory only)
    trials: int
    seed: int | None = None
    sampler: str = "tpe"
    min_trades: int = 1  # a trial with fewer trades in its training windows is pruned


# ------------------------------------------------------------------------------------------ storage
def redact(url: str) -> str:
    """The storage URL without its password (for the screen, the report and errors)."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def open_storage(url: str) -> Any:
    """An Optuna storage for ``url``: sqlite:///FILE, postgresql://..., mysql://... (RDB, with
    heartbeats so a trial of a worker that died is failed and retried) or journal:FILE."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    if url.startswith("journal:"):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        path = Path(url[len("journal:"):].removeprefix("//"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as exc:
            raise StorageError(f"--storage {url}: cannot open the journal file ({exc.strerror or exc})") from None
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in RDB_SCHEMES or "://" not in url:
        raise StorageError(f"--storage {redact(url)}: expected sqlite:///FILE, postgresql://USER:PASS@HOST/DB, "
                           "mysql://USER:PASS@HOST/DB or journal:FILE")
    kwargs: dict[str, Any] = {}
    if scheme == "sqlite":
        kwargs["connect_args"] = {"timeout": 120}  # several local workers take turns writing
        file = url.split(":///", 1)[-1]
        if file and file != ":memory:":
            Path(file).parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs["pool_pre_ping"] = True  # long trials outlive idle server connections
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna, and in use since 2.8
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=60, grace_period=300,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
    except Exception as exc:  # sqlalchemy's connection and URL errors: one line, no password
        if isinstance(exc, ImportError) or "import DB access module" in str(exc):
            how = {"postgresql": "pip install 'crot[cluster]' (psycopg 3), or write postgresql+psycopg2:// with "
                                 "psycopg2-binary installed",
                   "mysql": "pip install PyMySQL and write the URL as mysql+pymysql://..."}.get(scheme, "install it")
            raise StorageError(f"--storage {redact(url)}: the database driver is not installed ({how})") from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(f"--storage {redact(url)}: cannot open it ({redact(first)[:300]})") from None
    finally:
        optuna.logging.set_verbosity(optuna.logging.WARNING)


# ----------------------------------------------------------------------------------------- settings
def check_conflicts(space: Space, base_env: dict[str, str]) -> None:
    """A shared key searched while the .env sets its LONG_/SHORT_ override would not be searched
    on that side: refuse it rather than report a search that did not happen."""
    for key in space.keys:
        info = lookup(key)
        if info is None or info.scope != "side" or key != info.key:
            continue
        for prefix in SIDE_PREFIXES:
            if prefix + key in base_env:
                raise SpaceError(f"{space.path}: [params] {key}: your .env sets {prefix}{key}, which overrides it on "
                                 f"that side; search {prefix}{key} instead or remove it from .env")


def build_settings(base_env: dict[str, str], values: dict[str, str]) -> Settings:
    """The user's settings with a trial's values (raises SettingsError as a .env would)."""
    merged = {**base_env, **values}
    return settings_from_assignments([Assignment(k, v, i) for i, (k, v) in enumerate(merged.items(), start=1)],
                                     "trial settings")


def _env_fingerprint(base_env: dict[str, str]) -> dict[str, str]:
    out = {}
    for k, v in sorted(base_env.items()):
        info = lookup(k)
        if info is not None and not info.secret:  # API keys never reach the shared storage
            out[k] = v
    return out


def data_signature(data_dir: str | Path) -> list[list[Any]]:
    """File names and sizes of a replay folder (machine-independent: paths are relative)."""
    root = Path(data_dir)
    files = [p for p in sorted(root.glob("*")) + sorted((root / "reference").glob("*"))
             if p.is_file() and p.suffix not in (".md",)]
    return [[str(p.relative_to(root)), p.stat().st_size] for p in files]


def study_attrs(plan: StudyPlan) -> dict[str, Any]:
    """What the study records about itself: the search it is, and a fingerprint of its parts."""
    parts = {
        "space": plan.space.spec(), "objectives": list(plan.objectives),
        "folds": [[f.train_start, f.train_end, f.test_start, f.test_end] for f in plan.folds],
        "symbols": list(plan.symbols), "data": data_signature(plan.data_dir), "env": _env_fingerprint(plan.base_env),
        "min_trades": plan.min_trades,
    }
    digest = {k: hashlib.sha256(json.dumps(v, sort_keys=True).encode()).hexdigest()[:16] for k, v in parts.items()}
    return {
        "fingerprint": hashlib.sha256(json.dumps(digest, sort_keys=True).encode()).hexdigest()[:16],
        "parts": digest, "objectives": list(plan.objectives), "space": plan.space.spec(),
        "folds": [f.as_dict() for f in plan.folds], "symbols": list(plan.symbols),
        "data": Path(plan.data_dir).name, "trials": plan.trials,
    }


def _create_or_join(plan: StudyPlan, storage: Any) -> Any:
    import optuna

    mine = study_attrs(plan)
    directions = [OBJECTIVES[o][0] for o in plan.objectives]
    study = optuna.create_study(storage=storage, study_name=plan.study, directions=directions, load_if_exists=True)
    theirs = study.user_attrs.get("crot")
    if theirs is None:
        study.set_user_attr("crot", mine)
        study.set_user_attr("created", utc(int(time.time() * 1000)))
        return study
    if theirs.get("fingerprint") != mine["fingerprint"]:
        differ = [k for k, v in mine["parts"].items() if theirs.get("parts", {}).get(k) != v]
        what = {"env": ".env settings", "data": "data files", "folds": "walk-forward windows",
                "min_trades": "--min-trades"}
        raise StorageError(
            f"study {plan.study!r} in {redact(plan.storage)} is a different search (its "
            f"{', '.join(what.get(k, k) for k in differ) or 'setup'} differ from this command's); run it with the "
            "same space file, options, data and .env, or choose a new --study")
    return study


# -------------------------------------------------------------------------------------------- trial
def trial_figures(settings: Settings, plan: StudyPlan, start_ms: int, end_ms: int) -> dict[str, Any]:
    """Replay one window on a fresh simulated account; its report figures (JSON-friendly)."""
    from engine.runtime.replay import run_replay
    from engine.runtime.replay_metrics import report_dict

    summary = asyncio.run(run_replay(settings, data_dir=plan.data_dir, symbols=list(plan.symbols),
                                     start_ms=start_ms, end_ms=end_ms, audit_dir=None))
    overall = report_dict(summary)["overall"]
    return {k: overall.get(k) for k in FIGURES}


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500] or type(exc).__name__


def _objective(trial: Any, plan: StudyPlan) -> Any:
    import optuna

    values = {p.key: p.suggest(trial) for p in plan.space.params}
    trial.set_user_attr("env", values)
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    try:
        settings = build_settings(plan.base_env, values)
    except SettingsError as exc:
        reason = "; ".join((f"{pr.key}: " if pr.key else "") + pr.message for pr in exc.problems)[:500]
        trial.set_user_attr("invalid", reason)
        raise optuna.TrialPruned(f"settings rejected: {reason}") from None
    try:
        trains = [trial_figures(settings, plan, f.train_start, f.train_end) for f in plan.folds]
        trades = sum(int(t.get("trades") or 0) for t in trains)
        if trades < plan.min_trades:  # nothing to judge the settings by; a flat account is no "best"
            reason = f"{trades} trade(s) in the training windows, fewer than --min-trades {plan.min_trades}"
            trial.set_user_attr("too_few_trades", reason)
            raise optuna.TrialPruned(reason)
        folds = [{"train": tr, "test": trial_figures(settings, plan, f.test_start, f.test_end)}
                 for tr, f in zip(trains, plan.folds)]
    except optuna.TrialPruned:
        raise
    except Exception as exc:
        trial.set_user_attr("error", f"{type(exc).__name__}: {_one_line(exc)}")
        raise
    trial.set_user_attr("folds", folds)
    train = [_mean([objective_value(o, fd["train"]) for fd in folds]) for o in plan.objectives]
    trial.set_user_attr("test_values", [_mean([objective_value(o, fd["test"]) for fd in folds])
                                        for o in plan.objectives])
    return train[0] if len(train) == 1 else train


def _fmt(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _echo_trial(plan: StudyPlan) -> Callable[[Any, Any], None]:
    def echo(study: Any, ft: Any) -> None:
        head = f"trial {ft.number} [{ft.user_attrs.get('worker', '?')}]"
        if ft.values:
            test = ft.user_attrs.get("test_values") or []
            figs = ", ".join(f"{o} {_fmt(v)} (test {_fmt(t)})" for o, v, t in zip(plan.objectives, ft.values, test))
            line = f"{head}: train {figs}"
        else:
            why = (ft.user_attrs.get("invalid") or ft.user_attrs.get("too_few_trades") or ft.user_attrs.get("error")
                   or "")
            line = f"{head}: {ft.state.name.lower()}" + (f" ({why})" if why else "")
        print(line, flush=True)
    return echo


def _sampler(plan: StudyPlan, index: int) -> Any:
    import optuna

    seed = None if plan.seed is None else plan.seed + index  # distinct, reproducible streams per worker
    if plan.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if plan.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)  # constant_liar is on: parallel workers spread out


def _counted(study: Any) -> int:
    return len(study.get_trials(deepcopy=False))


def worker(plan: StudyPlan, index: int = 0) -> int:
    """One worker: join the study and run trials until it holds ``plan.trials``; returns how many
    this worker ran. Started once per local process (and once per process on other machines)."""
    import optuna
    from optuna.study import MaxTrialsCallback

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own line per trial, no tracebacks
    storage = open_storage(plan.storage)
    study = optuna.load_study(study_name=plan.study, storage=storage, sampler=_sampler(plan, index))
    before = _counted(study)
    if before >= plan.trials:
        return 0
    ran = 0

    def count(_study: Any, _ft: Any) -> None:
        nonlocal ran
        ran += 1

    study.optimize(lambda t: _objective(t, plan), n_trials=plan.trials - before, catch=(Exception,),
                   callbacks=[MaxTrialsCallback(plan.trials, states=None), _echo_trial(plan), count])
    return ran


def run_study(plan: StudyPlan, jobs: int) -> tuple[Any, int]:
    """Create (or join) the study and run ``jobs`` worker processes on it; returns the study and
    how many trials this machine ran. ``jobs`` = 1 runs the trials in this process."""
    import optuna

    storage = open_storage(plan.storage)
    study = _create_or_join(plan, storage)
    todo = plan.trials - _counted(study)
    if todo <= 0:
        return study, 0
    jobs = max(1, min(jobs, todo))
    if jobs == 1:
        ran = worker(plan, 0)
    else:
        # spawn, not fork: each worker opens its own storage connection and event loops
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = [pool.submit(worker, plan, i) for i in range(jobs)]
            try:
                ran = sum(f.result() for f in futures)
            except BrokenProcessPool:
                raise StorageError("a worker process died (killed, or out of memory); the finished trials are "
                                   f"kept in {redact(plan.storage)}: run the same command to go on") from None
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    return optuna.load_study(study_name=plan.study, storage=open_storage(plan.storage)), ran

