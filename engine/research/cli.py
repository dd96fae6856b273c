"""`crot optimize`: run / report / lookahead / example (arguments, one-line errors, output)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from engine.runtime.replay_cli import _positive, _whole

EXIT_USAGE = 2
EXIT_LOOKAHEAD = 1
LOOKAHEAD_DAYS = 2  # the default window of `lookahead`: this many days from the folder's range start


def _count(text: str) -> int:
    n = _whole(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n} must be 0 or more")
    return n


def _error(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _no_optuna() -> str | None:
    import importlib.util

    if importlib.util.find_spec("optuna") is None:
        return "crot optimize run/report need Optuna: pip install 'crot[research]' (the look-ahead check does not)"
    return None


def add_optimize_parser(sub: Any, load_settings: Callable[[str, bool], Any]) -> None:
    p = sub.add_parser("optimize", help="search settings over replays (Optuna, walk-forward, local or distributed); "
                       "'crot optimize lookahead' checks decisions for look-ahead",
                       description="Parameter research over replays. 'run SPACE.toml' searches the settings the "
                       "space file names (an Optuna study; trials run on all local cores, and on other machines "
                       "that run the same command against a shared --storage); 'report' shows a study's best "
                       "trials with their out-of-sample figures and writes best.env; 'lookahead' replays a window "
                       "with the data cut at random points and fails if a decision changes; 'example' prints a "
                       "space file. Cluster set-up: docs/OPTIMIZE.md.")
    osub = p.add_subparsers(dest="optimize_command", required=True, metavar="{run,report,lookahead,example}")

    r = osub.add_parser("run", help="run (or join) a study", description="Run or join an Optuna study over the "
                        "settings that SPACE.toml names; writes <OUT>/<STUDY>/report.json and best.env (never .env).")
    r.add_argument("space", metavar="SPACE.toml", help="the search space (see: crot optimize example)")
    r.add_argument("--study", help="study name (default: the space file's name); also the results folder")
    r.add_argument("--storage", help="Optuna storage shared by every worker: sqlite:///FILE (default "
                   "<OUT>/<STUDY>/study.db), postgresql://USER:PASS@HOST/DB, mysql://... or journal:FILE")
    r.add_argument("--jobs", type=_positive, default=os.cpu_count() or 1,
                   help="worker processes on this machine (default: the CPU count, %(default)s)")
    r.add_argument("--trials", type=_positive, help="trials the study should hold in total, over every worker and "
                   "machine (default: the space file's, else 50)")
    r.add_argument("--objectives", help="comma-separated: pnl, sharpe, drawdown, profit_factor; several = a "
                   "multi-objective study (default: the space file's, else sharpe)")
    r.add_argument("--data", help="replay folder (default: the bundled demo data)")
    r.add_argument("--symbols", help="comma-separated symbols (default: the space file's, else all traded in --data)")
    r.add_argument("--timerange", help="YYYYMMDD-YYYYMMDD cut into the walk-forward windows (default: the space "
                   "file's, else the folder's replay range)")
    r.add_argument("--folds", type=_positive, help="walk-forward folds (default: the space file's, else 2)")
    r.add_argument("--train-days", type=_positive, help="days of each training window")
    r.add_argument("--test-days", type=_positive, help="days of each test window (default: half a training window)")
    r.add_argument("--min-trades", type=_count, help="prune a trial with fewer trades in its training windows "
                   "(default: the space file's, else 1)")
    r.add_argument("--env", default=".env", help="base settings (default: .env, if present); trials change only "
                   "the searched keys")
    r.add_argument("--out", default="optimize", help="results root (default: ./optimize)")
    r.add_argument("--seed", type=int, help="sampler seed (worker i uses SEED+i)")
    r.add_argument("--sampler", choices=("tpe", "random", "nsga2"), default="tpe", help="Optuna sampler (default tpe)")
    r.add_argument("--top", type=_positive, default=10, help="best trials shown (default 10)")
    r.set_defaults(func=lambda a: cmd_run(a, load_settings))

    q = osub.add_parser("report", help="a study's best trials, out-of-sample figures and best.env")
    q.add_argument("--study", required=True, help="study name")
    q.add_argument("--storage", help="its storage (default: sqlite:///<OUT>/<STUDY>/study.db)")
    q.add_argument("--out", default="optimize", help="results root (default: ./optimize)")
    q.add_argument("--top", type=_positive, default=10, help="best trials shown (default 10)")
    q.add_argument("--trial", type=int, help="write this trial's settings to best.env instead of the best one")
    q.set_defaults(func=cmd_report)

    la = osub.add_parser("lookahead", help="fail (exit 1) if a decision changes when later data is removed",
                         description="Replay a window, then replay it with the data cut at random candle closes; "
                         "exit 1 naming the first decision that changed (it used data from after the cut).")
    la.add_argument("--data", help="replay folder (default: the bundled demo data)")
    la.add_argument("--symbols", help="comma-separated symbols (default: the demo's ten, or all traded in --data)")
    la.add_argument("--timerange", help=f"YYYYMMDD-YYYYMMDD window (default: {LOOKAHEAD_DAYS} days from the start "
                    "of the folder's replay range)")
    la.add_argument("--cuts", type=_positive, default=5, help="random cut points (default 5)")
    la.add_argument("--seed", type=int, default=0, help="seed of the cut points (default 0)")
    la.add_argument("--env", default=".env", help="settings (default: .env, if present)")
    la.set_defaults(func=lambda a: cmd_lookahead(a, load_settings))

    e = osub.add_parser("example", help="print (or --write) an example space file")
    e.add_argument("--write", metavar="FILE", help="write it to FILE (refused if FILE exists)")
    e.set_defaults(func=cmd_example)


# ------------------------------------------------------------------------------------------- run
def _study_name(text: str) -> str:
    from .optimize import STUDY_NAME

    if not STUDY_NAME.fullmatch(text):
        raise ValueError(f"--study {text!r}: use letters, digits, '.', '_' or '-' (up to 64, no spaces)")
    return text


def _default_storage(out: str, study: str) -> str:
    return f"sqlite:///{(Path(out) / study / 'study.db').resolve()}"


def _data_span(settings: Any, data_dir: str, symbols: list[str] | None) -> tuple[list[str], int, int]:
    """The traded symbols (resolved as the replay does) and the span their candles cover."""
    from engine.macro import resolve_symbols
    from engine.market.candles import timeframe_ms
    from engine.market.feeds import FileFeed
    from engine.runtime.replay_data import (
        ReplayDataError, apply_data_settings, resolve_symbols_arg, traded_candidates,
    )

    s, _ = apply_data_settings(settings, data_dir)
    tf = s.side("long").ema_trigger_timeframe
    recorded = traded_candidates(data_dir, tf)
    macro = resolve_symbols(recorded, s.side("long"))
    tradable = [x for x in recorded if x not in (macro.gold, macro.direct)] or recorded
    chosen = resolve_symbols_arg(symbols, tradable, data_dir) if symbols is not None else tradable
    try:
        feed = FileFeed.from_directory(data_dir, timeframe=tf, symbols=chosen)
    except (ValueError, OSError) as exc:
        raise ReplayDataError(str(exc).splitlines()[0]) from None
    return chosen, feed.start_ms - timeframe_ms(tf), feed.end_ms


def make_plan(args: argparse.Namespace, space: Any, settings: Any) -> Any:
    """The study plan from the command line, the space file's [study] table and the data."""
    from engine.runtime.replay import DEMO_DATA
    from engine.runtime.replay_data import folder_timerange, parse_timerange

    from .optimize import StudyPlan, check_conflicts
    from .walkforward import make_folds, parse_objectives

    st = space.study
    study = _study_name(args.study or Path(space.path).stem)
    data = str(Path(args.data or DEMO_DATA).resolve())
    objectives = parse_objectives(args.objectives if args.objectives is not None else st.get("objectives", ["sharpe"]))
    raw_symbols = args.symbols if args.symbols is not None else st.get("symbols")
    symbols = (raw_symbols.split(",") if isinstance(raw_symbols, str) else raw_symbols) if raw_symbols else None
    chosen, data_start, data_end = _data_span(settings, data, symbols)
    timerange = args.timerange if args.timerange is not None else st.get("timerange")
    start, end = parse_timerange(timerange) if timerange else folder_timerange(data)
    start = data_start if start is None else max(start, data_start)
    end = data_end if end is None else min(end, data_end)
    folds = make_folds(start, end, args.folds or st.get("folds", 2), args.train_days or st.get("train_days"),
                       args.test_days or st.get("test_days"))
    check_conflicts(space, dict(settings.source))
    storage = args.storage or _default_storage(args.out, study)
    return StudyPlan(study=study, storage=storage, space=space, objectives=objectives, folds=tuple(folds),
                     data_dir=data, symbols=tuple(chosen), base_env=dict(settings.source),
                     trials=args.trials or st.get("trials", 50), seed=args.seed, sampler=args.sampler,
                     min_trades=args.min_trades if args.min_trades is not None else st.get("min_trades", 1))


def cmd_run(args: argparse.Namespace, load_settings: Callable[[str, bool], Any]) -> int:
    from engine.runtime.replay_data import ReplayDataError

    from .optimize import StorageError, redact, run_study
    from .space import SpaceError, load_space

    if (missing := _no_optuna()) is not None:
        return _error(missing)
    try:
        space = load_space(args.space)
        settings = load_settings(args.env, args.env == ".env")
        plan = make_plan(args, space, settings)
    except (SpaceError, ReplayDataError, StorageError, ValueError) as exc:
        return _error(str(exc))
    short = ",".join(s.split("/")[0] for s in plan.symbols)
    print(f"study {plan.study} in {redact(plan.storage)}: {len(plan.space.params)} settings "
          f"({', '.join(plan.space.keys)}), objectives {', '.join(plan.objectives)}, {plan.trials} trials in total; "
          f"{short} from {Path(plan.data_dir).name}; {min(args.jobs, plan.trials)} local worker(s)")
    for i, f in enumerate(plan.folds, start=1):
        print(f"  fold {i}: {f.describe()}")
    t0 = time.monotonic()
    try:
        study, ran = run_study(plan, args.jobs)
    except StorageError as exc:
        return _error(str(exc))
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished trials are kept in {redact(plan.storage)}; run the same command to go on",
              file=sys.stderr)
        return 130
    print(f"{ran} trial(s) run here in {time.monotonic() - t0:.0f} s")
    return _report(study, plan.storage, Path(args.out) / plan.study, args.top, None)


def _report(study: Any, storage: str, out: Path, top: int, pick: int | None) -> int:
    from .report import ReportError, build_report, print_report, write_outputs

    try:
        report = build_report(study, storage, top=top, pick=pick)
    except ReportError as exc:
        return _error(str(exc))
    print_report(report)
    json_path, env_path = write_outputs(report, out)
    print(f"report: {json_path}; winning settings: {env_path} (a fragment: review it and copy the lines into "
          ".env yourself, then run crot config check)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    if (missing := _no_optuna()) is not None:
        return _error(missing)
    import optuna

    from .optimize import StorageError, open_storage, redact

    try:
        study_name = _study_name(args.study)
        storage = args.storage or _default_storage(args.out, study_name)
        if storage.startswith("sqlite:///") and not args.storage and not Path(storage[len("sqlite:///"):]).is_file():
            return _error(f"--study {study_name}: no study file {storage[len('sqlite:///'):]} (give --storage or --out)")
        study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
    except KeyError:
        return _error(f"--study {args.study}: no such study in {redact(storage)}")
    except (StorageError, ValueError) as exc:
        return _error(str(exc))
    return _report(study, storage, Path(args.out) / study_name, args.top, args.trial)


# ------------------------------------------------------------------------------------- lookahead
def cmd_lookahead(args: argparse.Namespace, load_settings: Callable[[str, bool], Any]) -> int:
    from engine.runtime.replay import DEMO_DATA, demo_symbols
    from engine.runtime.replay_data import ReplayDataError, folder_timerange, parse_timerange, utc

    from .lookahead import run_lookahead
    from .walkforward import DAY_MS

    settings = load_settings(args.env, args.env == ".env")
    data = args.data or str(DEMO_DATA)
    symbols = args.symbols.split(",") if args.symbols is not None else (demo_symbols(settings) if not args.data else None)
    try:
        start, end = parse_timerange(args.timerange)
        if args.timerange is None:
            start, end = folder_timerange(data)
            if start is not None and end is None:
                end = start + LOOKAHEAD_DAYS * DAY_MS

        def progress(i: int, n: int, cut: int, change: Any) -> None:
            print(f"cut {i}/{n} at {utc(cut)} UTC: " + ("same decisions" if change is None else "CHANGED"), flush=True)

        res = run_lookahead(settings, data_dir=data, symbols=symbols, start_ms=start, end_ms=end, cuts=args.cuts,
                            seed=args.seed, on_cut=progress)
    except ReplayDataError as exc:
        return _error(str(exc))
    span = f"{utc(res.start_ms)} .. {utc(res.end_ms)} UTC, {','.join(s.split('/')[0] for s in res.symbols)}"
    if res.ok:
        print(f"no look-ahead: {len(res.cuts)} cuts in {span}; {res.decisions} decisions and {res.actions} order/stop "
              "actions were the same without the later data")
        return 0
    for c in res.changes:
        print(f"look-ahead: {c.message()}", file=sys.stderr)
    print(f"look-ahead found at {len(res.changes)} of {len(res.cuts)} cuts in {span}: a decision used data from "
          "after its time", file=sys.stderr)
    return EXIT_LOOKAHEAD


# --------------------------------------------------------------------------------------- example
def cmd_example(args: argparse.Namespace) -> int:
    from engine.settings.envfile import atomic_write_text

    from .space import EXAMPLE

    if not args.write:
        sys.stdout.write(EXAMPLE)
        return 0
    if Path(args.write).exists():
        return _error(f"--write {args.write}: the file exists; choose another name or remove it first")
    atomic_write_text(args.write, EXAMPLE, mode=0o644)
    print(f"wrote {args.write}")
    return 0


# ------------------------------------------------------------------------------ standalone entry
def _load_settings(env: str, missing_ok: bool) -> Any:
    from engine.settings import SettingsError, load_settings

    try:
        return load_settings(env, missing_ok=missing_ok)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def main(argv: list[str] | None = None) -> int:
    """`python -m engine.research.cli optimize ...`: the same command as `crot optimize ...`."""
    parser = argparse.ArgumentParser(prog="crot")
    sub = parser.add_subparsers(dest="command", required=True)
    add_optimize_parser(sub, _load_settings)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
