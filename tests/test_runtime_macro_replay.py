"""The macro overlay in a replay: a recorded folder that has a gold proxy and BTC feeds the
gold/BTC RSI regime (read, never traded); regime changes are events, and the regime gate is in
every decision."""

import shutil
from pathlib import Path

from engine.market.feeds import read_candles_csv
from engine.runtime.events import Decisions, EventBus, OrderEvent, Regime
from engine.runtime.replay import run_replay
from engine.settings.envfile import parse_lines
from engine.settings.loader import settings_from_assignments

#: the 2018 BTC-quoted set and the XRP perp files: test data since the demo moved to USDT-M perps
DEMO_DATA = Path(__file__).resolve().parent / "fixtures" / "market_2018"


def write_series(path, base, closes_from, scale):
    """Real candles of another recording, moved onto `base`'s timestamps and rescaled."""
    rows = ["timestamp_ms,open,high,low,close,volume"]
    for b, c in zip(base, closes_from):
        rows.append(f"{b.ts_ms},{c.open * scale},{c.high * scale},{c.low * scale},{c.close * scale},{c.volume}")
    path.write_text("\n".join(rows) + "\n")


async def test_recorded_gold_and_btc_drive_the_regime(tmp_path):
    shutil.copy(DEMO_DATA / "XRP_USDT_USDT-5m-futures.csv", tmp_path)
    xrp = read_candles_csv(tmp_path / "XRP_USDT_USDT-5m-futures.csv")
    write_series(tmp_path / "XAUT_USDT_USDT-5m-futures.csv", xrp, read_candles_csv(DEMO_DATA / "ETH_BTC-5m.csv"), 20_000)
    write_series(tmp_path / "BTC_USDT_USDT-5m-futures.csv", xrp, read_candles_csv(DEMO_DATA / "LTC_BTC-5m.csv"),
                 3_000_000)
    text = "GOLD_TIMEFRAME=1h\nGOLD_MIN_CANDLES=20\nEMA_MACRO_FAST_MINUTES=600\nEMA_MACRO_SLOW_MINUTES=1500\n"
    assignments, _ = parse_lines(text.splitlines())
    settings = settings_from_assignments(assignments)
    bus = EventBus()
    regimes, gate_regimes, traded = [], set(), set()

    def on(ev):
        if isinstance(ev, Regime):
            regimes.append(ev)
        elif isinstance(ev, Decisions):
            for d in ev.decisions:
                g = d.gate("macro_regime")
                assert g is not None, "every decision carries the macro gate"
                gate_regimes.add(g.detail.split()[0] if g.detail else "")
        elif isinstance(ev, OrderEvent):
            traded.add(ev.symbol)

    bus.subscribe(on)
    summary = await run_replay(settings, data_dir=tmp_path, bus=bus, max_steps=1999)
    assert summary.symbols == ["BTC/USDT:USDT", "XRP/USDT:USDT"]  # the gold proxy is not traded
    assert "XAUT/USDT:USDT" not in traded
    assert {r.inputs["profile"] for r in regimes} == {"long", "short"}  # each profile's overlay
    names = [r.regime for r in regimes if r.inputs["profile"] == "long"]
    assert names[0] == "unavailable"  # before 20 hourly candles exist
    assert any(n in ("normal", "risk_off", "panic") for n in names)
    assert all("gold_rsi" in r.inputs for r in regimes)  # each change carries its inputs
    # one event per change, never a repeat of the same regime
    assert all(a != b for a, b in zip(names, names[1:]))
