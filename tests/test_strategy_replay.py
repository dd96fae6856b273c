"""A replay of the ten bundled 5m series (1h aggregated) through the live strategy path:
FeatureEngine -> features_all -> evaluate (both sides) -> select_entries, with a simulated
portfolio (an entry holds the symbol for an hour, then closes into a cooldown)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from engine.market import read_candles_csv
from engine.market.feeds import merge_by_time, parse_recorded_filename
from engine.settings import ProfileSettings
from engine.strategy import (
    SELECTION_GATES,
    SIGNAL_GATES,
    EntryContext,
    FeatureEngine,
    cooldown_until,
    evaluate,
    select_entries,
)

DATA = Path(__file__).resolve().parent / "fixtures" / "market_2018"  # the 2018 BTC-quoted set (test data)
HOLD_MS = 3_600_000  # a simulated position lasts one hour
EXPECTED = SIGNAL_GATES + SELECTION_GATES


class Tally:
    """What the tests need from every decision, without keeping 80k decisions alive."""

    def __init__(self) -> None:
        self.decisions = 0
        self.fails: Counter = Counter()
        self.first: Counter = Counter()
        self.accepted = 0
        self.bad_gate_lists = 0
        self.bad_flags = 0
        self.records: list[dict] = []

    def add(self, d) -> None:
        self.decisions += 1
        gates = d.gates
        if len(gates) != len(EXPECTED) or any(g.name != n for g, n in zip(gates, EXPECTED)):
            self.bad_gate_lists += 1
        fails = self.fails
        for g in gates:
            if not g.passed:
                fails[g.name] += 1
        first = d.first_rejection
        if first is None:
            self.accepted += 1
        else:
            self.first[first] += 1
        flags_ok = ((not d.entry_valid or (d.valid and d.add_valid))
                    and (not d.add_valid or d.valid)
                    and (gates[1].passed or not d.valid)  # macro_trend
                    and d.entry_valid == (first is None))
        self.bad_flags += not flags_ok
        if self.decisions % 997 == 0:
            self.records.append(d.to_record())


@pytest.fixture(scope="module")
def replay():
    p = ProfileSettings()
    series = {}
    for path in sorted(DATA.glob("*_BTC-5m.csv")):
        info = parse_recorded_filename(path)
        series[info.symbol] = read_candles_csv(path)
    assert len(series) == 10
    engine = FeatureEngine(p)  # BTC-quoted pairs: the neutral benchmark
    held: dict[str, dict[str, tuple[int, float]]] = {"long": {}, "short": {}}
    cooldowns: dict[str, dict[str, int]] = {"long": {}, "short": {}}
    ladders: dict[str, list[int]] = {"long": [], "short": []}
    tally = {"long": Tally(), "short": Tally()}
    chosen: Counter = Counter()
    events = merge_by_time(series)
    k = 0
    while k < len(events):
        ts = events[k][1].ts_ms
        now = ts + 300_000
        while k < len(events) and events[k][1].ts_ms == ts:
            sym, candle = events[k]
            engine.on_candle(sym, "5m", candle)
            k += 1
        feats = engine.features_all(ts_ms=ts)
        if not feats:
            continue
        btc = engine.benchmark(ts)
        for side, sign in (("long", 1.0), ("short", -1.0)):
            # close simulated positions after an hour: a win when the price moved our way
            for sym, (opened, price) in list(held[side].items()):
                if ts - opened >= HOLD_MS and sym in feats:
                    pnl = sign * (feats[sym].close - price)
                    cooldowns[side][sym] = cooldown_until(now, pnl, p)
                    del held[side][sym]
            decs = [evaluate(side, f, btc, p) for f in feats.values()]
            other = "short" if side == "long" else "long"
            ctx = EntryContext(
                now_ms=now, held=frozenset(held[side]),
                reserved_by_other=frozenset(held[other]),
                cooldown_until=dict(cooldowns[side]), recent_ladders_ms=tuple(ladders[side]),
            )
            sel = select_entries(decs, ctx, p)
            for d in sel.chosen:
                held[side][d.symbol] = (ts, d.features.close)
                ladders[side].append(now)
                chosen[side] += 1
            ladders[side] = ladders[side][-50:]
            for d in sel.decisions:
                tally[side].add(d)
    return tally, chosen


def test_every_decision_lists_every_gate(replay):
    tally, _ = replay
    assert EXPECTED[1] == "macro_trend"
    for side in ("long", "short"):
        assert tally[side].decisions > 40_000
        assert tally[side].bad_gate_lists == 0


def test_rejections_are_spread_over_many_gates(replay):
    tally, chosen = replay
    informative = ("macro_trend", "trigger_trend", "rs_confirmation", "chop",
                   "volume_confirmation", "value_area", "pullback_cross_age", "pullback_gap",
                   "min_rs60", "min_rs30", "min_score", "position_open", "cooldown")
    for side in ("long", "short"):
        t = tally[side]
        for name in informative:
            assert 0 < t.fails[name] < t.decisions, (side, name, t.fails[name])
        assert len(t.first) >= 8, t.first
        assert chosen[side] > 10
        assert t.accepted == chosen[side]
        # the BTC filter cannot fail on BTC-quoted data: the benchmark return is 0
        assert t.fails["btc_risk"] == 0


def test_flags_are_consistent(replay):
    tally, _ = replay
    for side in ("long", "short"):
        assert tally[side].bad_flags == 0


def test_records_are_json_lines_with_stable_columns(replay):
    tally, _ = replay
    for side in ("long", "short"):
        records = tally[side].records
        assert len(records) > 30
        keys = list(records[0])
        for rec in records:
            json.dumps(rec, allow_nan=False)
            assert list(rec) == keys
