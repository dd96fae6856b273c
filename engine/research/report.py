"""The results of a study: the best trials with their out-of-sample figures, the walk-forward
picks, and the winning settings as a .env fragment (never the user's .env).

Best trials: one objective, the top trials by their training value; several, the Pareto front
of the training values. The walk-forward view picks, for each fold, the trial whose training
figure on that fold is best (first objective) and shows what it did on that fold's test
window: the figure to trust. The winner (``best.env``) is the best trial by the first
objective among the best trials, or the trial named with ``--trial``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from engine.settings.envfile import atomic_write_text

from .walkforward import OBJECTIVES, objective_value

__all__ = ["ReportError", "build_report", "print_report", "write_outputs"]


class ReportError(ValueError):
    """A report that cannot be made (no finished trial, an unknown --trial); one line."""


def _better(direction: str) -> int:
    return -1 if direction == "maximize" else 1


def _trial_row(t: Any, objectives: list[str]) -> dict[str, Any]:
    folds = t.user_attrs.get("folds") or []
    return {
        "number": t.number,
        "train": dict(zip(objectives, t.values)),
        "test": dict(zip(objectives, t.user_attrs.get("test_values") or [])),
        "train_trades": sum(int(f["train"].get("trades") or 0) for f in folds),
        "test_trades": sum(int(f["test"].get("trades") or 0) for f in folds),
        "env": dict(t.user_attrs.get("env") or {}),
        "worker": t.user_attrs.get("worker"),
        "folds": folds,
    }


def build_report(study: Any, storage_url: str, *, top: int = 10, pick: int | None = None) -> dict[str, Any]:
    from optuna.trial import TrialState

    from .optimize import redact

    meta = study.user_attrs.get("crot") or {}
    objectives: list[str] = list(meta.get("objectives") or [])
    if not objectives or len(objectives) != len(study.directions):
        raise ReportError(f"study {study.study_name!r} was not made by crot optimize (no objectives recorded)")
    dirs = [OBJECTIVES[o][0] for o in objectives]
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    counts = {s.name.lower(): sum(1 for t in trials if t.state == s) for s in TrialState}
    if not done:
        invalid = [t.user_attrs.get("invalid") or t.user_attrs.get("too_few_trades") for t in trials
                   if "invalid" in t.user_attrs or "too_few_trades" in t.user_attrs][:1]
        raise ReportError(f"study {study.study_name!r}: no finished trial yet ({len(trials)} trials: "
                          + ", ".join(f"{n} {k}" for k, n in counts.items() if n)
                          + (f"; e.g. {invalid[0]}" if invalid else "") + ")")
    primary = lambda t: _better(dirs[0]) * t.values[0]  # noqa: E731 - sort key: best first
    best = sorted(done, key=primary) if len(objectives) == 1 else sorted(study.best_trials, key=primary)
    if pick is None:
        winner, why = best[0], f"best training {objectives[0]}" + (" on the Pareto front" if len(objectives) > 1 else "")
    else:
        found = [t for t in done if t.number == pick]
        if not found:
            raise ReportError(f"--trial {pick}: not a finished trial of study {study.study_name!r} "
                              f"(finished: {', '.join(str(t.number) for t in sorted(done, key=lambda t: t.number)[:20])}"
                              f"{' ...' if len(done) > 20 else ''})")
        winner, why = found[0], "chosen with --trial"
    per_fold = []
    for i, fold in enumerate(meta.get("folds") or []):
        scored = [t for t in done if len(t.user_attrs.get("folds") or []) > i]
        if not scored:
            continue
        t = min(scored, key=lambda t: _better(dirs[0]) * objective_value(objectives[0], t.user_attrs["folds"][i]["train"]))
        f = t.user_attrs["folds"][i]
        per_fold.append({"fold": i + 1, "window": fold, "trial": t.number,
                         "train": {o: objective_value(o, f["train"]) for o in objectives},
                         "test": {o: objective_value(o, f["test"]) for o in objectives},
                         "test_trades": f["test"].get("trades"), "test_figures": f["test"]})
    wf_mean = {o: sum(p["test"][o] for p in per_fold) / len(per_fold) for o in objectives} if per_fold else {}
    invalid = [t.user_attrs["invalid"] for t in trials if "invalid" in t.user_attrs]
    few = sum(1 for t in trials if "too_few_trades" in t.user_attrs)
    errors = [t.user_attrs["error"] for t in trials if "error" in t.user_attrs]
    return {
        "study": study.study_name, "storage": redact(storage_url), "created": study.user_attrs.get("created"),
        "objectives": [{"name": o, "direction": d, "label": OBJECTIVES[o][2]} for o, d in zip(objectives, dirs)],
        "data": meta.get("data"), "symbols": meta.get("symbols"), "folds": meta.get("folds"), "space": meta.get("space"),
        "trials": {"total": len(trials), **{k: n for k, n in counts.items() if n}},
        "invalid_examples": sorted(set(invalid))[:3], "too_few_trades": few, "error_examples": sorted(set(errors))[:3],
        "best": [_trial_row(t, objectives) for t in best[:top]],
        "walk_forward": {"per_fold": per_fold, "test_mean": wf_mean},
        "winner": {**_trial_row(winner, objectives), "why": why},
    }


def best_env_text(report: dict[str, Any]) -> str:
    w = report["winner"]
    figs = lambda d: ", ".join(f"{k} {_num(v)}" for k, v in d.items())  # noqa: E731
    lines = [
        f"# crot optimize: study {report['study']}, trial {w['number']} ({w['why']})",
        f"# training windows (in-sample): {figs(w['train'])}; {w['train_trades']} trades",
        f"# test windows (out-of-sample): {figs(w['test'])}; {w['test_trades']} trades",
        f"# data {report['data']}, symbols {','.join(s.split('/')[0] for s in report['symbols'] or [])}",
        "# Review these lines, then copy them into your .env yourself (crot optimize never writes .env);",
        "# then run: crot config check",
    ]
    lines += [f"{k}={v}" for k, v in w["env"].items()]
    return "\n".join(lines) + "\n"


def _plain(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def write_outputs(report: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """``report.json`` and ``best.env`` in ``out_dir``, each written atomically."""
    out = Path(out_dir)
    json_path, env_path = out / "report.json", out / "best.env"
    atomic_write_text(json_path, json.dumps(_plain(report), indent=2, sort_keys=False) + "\n", mode=0o644)
    atomic_write_text(env_path, best_env_text(report), mode=0o600)
    return json_path, env_path


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return "-" if v is None else str(v)


def print_report(report: dict[str, Any], console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    objs = report["objectives"]
    t = report["trials"]
    console.print(f"study [bold]{report['study']}[/] in {report['storage']}: {t['total']} trials ("
                  + ", ".join(f"{n} {k}" for k, n in t.items() if k != "total") + ")")
    for i, f in enumerate(report["folds"] or [], start=1):
        console.print(f"  fold {i}: train {f['train'][0]} .. {f['train'][1]}, test .. {f['test'][1]} UTC")
    for ex in report["invalid_examples"]:
        console.print(f"  [yellow]pruned[/] (settings rejected): {ex}")
    if report.get("too_few_trades"):
        console.print(f"  [yellow]pruned[/]: {report['too_few_trades']} trial(s) with too few trades in the training "
                      "windows (--min-trades)")
    for ex in report["error_examples"]:
        console.print(f"  [red]failed[/]: {ex}")
    title = "best trials" if len(objs) == 1 else "Pareto front (training figures)"
    table = Table(title=f"{title}: training (in-sample) and test (out-of-sample) figures",
                  caption="trades: training/test windows; * = the winner (best.env)")
    table.add_column("trial", justify="right")
    for o in objs:
        table.add_column(f"train {o['label']}", justify="right")
    for o in objs:
        table.add_column(f"test {o['label']}", justify="right", style="cyan")
    table.add_column("trades", justify="right")
    table.add_column("settings", overflow="fold")
    for row in report["best"]:
        mark = " *" if row["number"] == report["winner"]["number"] else ""
        table.add_row(f"{row['number']}{mark}", *[_num(row["train"][o["name"]]) for o in objs],
                      *[_num(row["test"].get(o["name"])) for o in objs], f"{row['train_trades']}/{row['test_trades']}",
                      "\n".join(f"{k}={v}" for k, v in row["env"].items()))
    console.print(table)
    wf = report["walk_forward"]
    if wf["per_fold"]:
        first = objs[0]
        wt = Table(title=f"walk-forward: per fold, the trial best on its training window ({first['name']}) "
                         "and its figures on the test window that follows")
        wt.add_column("fold", justify="right")
        wt.add_column("trial", justify="right")
        wt.add_column(f"train {first['label']}", justify="right")
        for o in objs:
            wt.add_column(f"test {o['label']}", justify="right", style="cyan")
        wt.add_column("test trades", justify="right")
        for p in wf["per_fold"]:
            wt.add_row(str(p["fold"]), str(p["trial"]), _num(p["train"][first["name"]]),
                       *[_num(p["test"][o["name"]]) for o in objs], _num(p["test_trades"]))
        wt.add_row("mean", "", "", *[_num(wf["test_mean"][o["name"]]) for o in objs], "")
        console.print(wt)
    w = report["winner"]
    console.print(f"winner: trial {w['number']} ({w['why']}): "
                  + " ".join(f"{k}={v}" for k, v in w["env"].items()))
