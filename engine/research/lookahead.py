"""Look-ahead check (as freqtrade's lookahead-analysis): do decisions depend on later data?

Replay a window once with all the data, then again with the data folder cut at random
candle closes T (every candle, reference candle and gold-proxy file keeps only the candles
closed by T, every funding file only the events before T). Up to T both replays must make
the same decisions: every profile's decision on every symbol (verdicts, score, each gate's
value and threshold, every feature) and every order and stop action. A difference can only
come from data after T, which a live bot would not have had: it is named, with the cut, the
decision and the first value that changed.

The replay's simulated market (tick and contract size) is also compared: it is derived from
the recorded prices, so it must not depend on the cut either.
"""

from __future__ import annotations

import asyncio
import gzip
import math
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.market.candles import timeframe_ms
from engine.market.feeds import recorded_files
from engine.runtime.events import Decisions, Event, EventBus, OrderEvent, StopEvent
from engine.runtime.replay_data import REFERENCE_DIR, utc
from engine.settings import Settings

__all__ = ["Change", "LookaheadResult", "cut_folder", "run_lookahead"]


@dataclass(frozen=True)
class Change:
    cut_ms: int  # the cut: data after this time was removed
    ts_ms: int  # the cycle whose decision changed
    what: str  # the decision and the first value that changed, for the user

    def message(self) -> str:
        return f"with the data cut at {utc(self.cut_ms)} UTC, {self.what}"


@dataclass
class LookaheadResult:
    start_ms: int
    end_ms: int
    symbols: list[str]
    cuts: list[int] = field(default_factory=list)
    decisions: int = 0  # decisions compared (summed over the cuts)
    actions: int = 0  # order and stop actions compared
    changes: list[Change] = field(default_factory=list)  # the first change of each cut that had one

    @property
    def ok(self) -> bool:
        return not self.changes


# ---------------------------------------------------------------------------------- recording
def _decision_record(d: Any, selected: bool) -> dict[str, Any]:
    rec: dict[str, Any] = {"valid": d.valid, "entry_valid": d.entry_valid, "add_valid": d.add_valid,
                           "selected": selected, "score": d.score, "raw_score": d.raw_score}
    for g in d.gates:
        rec[f"gate {g.name}"] = (g.value, g.threshold, g.passed)
    if d.features is not None:
        for k, v in d.features.as_dict().items():
            rec[f"feature {k}"] = v
    return rec


class _Recorder:
    """Per cycle time: each (profile, symbol) decision, and the order/stop actions in order."""

    def __init__(self) -> None:
        self.decisions: dict[int, dict[tuple[str, str], dict[str, Any]]] = {}
        self.actions: dict[int, list[dict[str, Any]]] = {}
        self.steps: list[int] = []

    def __call__(self, ev: Event) -> None:
        if isinstance(ev, Decisions):
            chosen = set(ev.selected)
            slot = self.decisions.setdefault(ev.ts_ms, {})
            for d in ev.decisions:
                slot[(ev.profile, d.symbol)] = _decision_record(d, d.symbol in chosen)
        elif isinstance(ev, (OrderEvent, StopEvent)):
            self.actions.setdefault(ev.ts_ms, []).append(ev.to_record())
        elif ev.kind == "account" and (not self.steps or self.steps[-1] != ev.ts_ms):
            self.steps.append(ev.ts_ms)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _show(v: Any) -> str:
    if isinstance(v, tuple) and len(v) == 3:
        return f"value {v[0]!r} threshold {v[1]!r} {'pass' if v[2] else 'fail'}"
    return repr(v)


def _compare(full: _Recorder, cut: _Recorder, cut_ms: int) -> tuple[Change | None, int, int]:
    """The first difference up to ``cut_ms`` (or None), and how many decisions and actions
    were compared."""
    n_dec = n_act = 0
    times = sorted({t for t in full.decisions if t <= cut_ms} | {t for t in cut.decisions if t <= cut_ms}
                   | {t for t in full.actions if t <= cut_ms} | {t for t in cut.actions if t <= cut_ms})
    for t in times:
        a, b = full.decisions.get(t, {}), cut.decisions.get(t, {})
        for key in sorted(set(a) | set(b)):
            profile, symbol = key
            name = f"the {profile} decision on {symbol} at {utc(t)} UTC"
            if key not in b:
                return Change(cut_ms, t, f"{name} is missing (the full replay made it)"), n_dec, n_act
            if key not in a:
                return Change(cut_ms, t, f"{name} appears (the full replay did not make it)"), n_dec, n_act
            n_dec += 1
            ra, rb = a[key], b[key]
            diff = [k for k in dict.fromkeys([*ra, *rb]) if not _same(ra.get(k), rb.get(k))]
            if diff:
                k = diff[0]
                more = f"; also changed: {', '.join(diff[1:7])}{' ...' if len(diff) > 7 else ''}" if len(diff) > 1 else ""
                return Change(cut_ms, t, f"{name} changed: {k} {_show(ra.get(k))} with all the data, "
                                         f"{_show(rb.get(k))} without the later data{more}"), n_dec, n_act
        xa, xb = full.actions.get(t, []), cut.actions.get(t, [])
        for i in range(max(len(xa), len(xb))):
            oa = xa[i] if i < len(xa) else None
            ob = xb[i] if i < len(xb) else None
            if oa != ob:
                def desc(o: dict[str, Any] | None) -> str:
                    if o is None:
                        return "none"
                    return (f"{o['kind']} {o.get('action')} {o.get('purpose', '')} {o.get('side', '')} "
                            f"{o.get('amount')} @ {o.get('price', o.get('trigger'))}").replace("  ", " ")
                sym = (oa or ob or {}).get("symbol")
                return Change(cut_ms, t, f"action {i + 1} of the cycle at {utc(t)} UTC on {sym} changed: "
                                         f"{desc(oa)} with all the data, {desc(ob)} without the later data"), n_dec, n_act
            n_act += 1
    return None, n_dec, n_act


# ---------------------------------------------------------------------------------- the cut
def _lines(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:  # type: ignore[operator]
        return fh.read().splitlines()


def cut_folder(src: str | Path, dst: str | Path, cut_ms: int, cache: dict[Path, list[str]] | None = None) -> None:
    """Copy a replay folder keeping only what was known at ``cut_ms``: candles that closed by
    then (open + timeframe <= cut) and funding events before it. Values are copied as text,
    unchanged; other files the replay reads (replay.env, replay.timerange) are copied as they are."""
    src, dst = Path(src), Path(dst)
    cache = {} if cache is None else cache
    for sub in ("", REFERENCE_DIR):
        folder = src / sub if sub else src
        if not folder.is_dir():
            continue
        out = dst / sub if sub else dst
        out.mkdir(parents=True, exist_ok=True)
        for f in recorded_files(folder):
            lines = cache.get(f.path)
            if lines is None:
                lines = cache[f.path] = _lines(f.path)
            if f.kind == "funding_rate":
                keep = lambda ts: ts < cut_ms  # noqa: E731
            else:
                tf = timeframe_ms(f.timeframe)
                keep = lambda ts, tf=tf: ts + tf <= cut_ms  # noqa: E731
            kept = [lines[0]] + [ln for ln in lines[1:] if ln.strip() and keep(int(float(ln.split(",", 1)[0])))]
            (out / f.path.name.removesuffix(".gz")).write_text("\n".join(kept) + "\n", encoding="utf-8")
        if not sub:
            for name in ("replay.env", "replay.timerange"):
                if (folder / name).is_file():
                    shutil.copyfile(folder / name, out / name)


# ---------------------------------------------------------------------------------- the check
async def _replay(settings: Settings, data_dir: Path, symbols: list[str] | None, start_ms: int, end_ms: int
                  ) -> tuple[_Recorder, Any, dict[str, Any]]:
    from engine.runtime.replay import run_replay

    rec = _Recorder()
    bus = EventBus()
    bus.subscribe(rec)
    sims: list[Any] = []

    def keep(sim: Any) -> Any:
        sims.append(sim)
        return sim

    summary = await run_replay(settings, data_dir=data_dir, symbols=symbols, start_ms=start_ms, end_ms=end_ms,
                               bus=bus, audit_dir=None, exchange_wrapper=keep)
    markets = {s: sims[0].market(s) for s in summary.symbols} if sims else {}
    return rec, summary, markets


def run_lookahead(settings: Settings, *, data_dir: str | Path, symbols: list[str] | None, start_ms: int,
                  end_ms: int, cuts: int = 5, seed: int = 0, on_cut: Any = None) -> LookaheadResult:
    """Replay [start, end) with all the data, then once per random cut; ``on_cut(i, n, cut_ms,
    change)`` reports progress. Bad inputs raise ReplayDataError before anything is compared."""
    src = Path(data_dir)
    full, summary, markets = asyncio.run(_replay(settings, src, symbols, start_ms, end_ms))
    res = LookaheadResult(summary.start_ms, summary.end_ms, list(summary.symbols))
    candidates = full.steps[:-1]  # a cut at the last close removes nothing
    pick = sorted(random.Random(seed).sample(candidates, min(cuts, len(candidates))))
    res.cuts = pick
    cache: dict[Path, list[str]] = {}
    for i, cut_ms in enumerate(pick, start=1):
        with tempfile.TemporaryDirectory(prefix="crot-lookahead-") as tmp:
            cut_folder(src, tmp, cut_ms, cache)
            rec, _, cut_markets = asyncio.run(_replay(settings, Path(tmp), list(summary.symbols), start_ms, cut_ms))
        change, n_dec, n_act = _compare(full, rec, cut_ms)
        if change is None:
            for s, m in markets.items():
                if cut_markets.get(s) != m:
                    change = Change(cut_ms, cut_ms, f"the replay's market for {s} changed: {m} with all the data, "
                                                    f"{cut_markets.get(s)} without the later data")
                    break
        res.decisions += n_dec
        res.actions += n_act
        if change is not None:
            res.changes.append(change)
        if on_cut is not None:
            on_cut(i, len(pick), cut_ms, change)
    return res
