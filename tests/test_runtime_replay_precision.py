"""The replay's market precision (tick and contract size) comes only from what is known when
trading starts: the warm-up candles, never the prices recorded later (no look-ahead)."""

from __future__ import annotations

from decimal import Decimal

from engine.market.candles import Candle
from engine.runtime.replay import demo_market, known_at_start, run_replay
from engine.settings import Settings

M5 = 300_000
T0 = 1_722_470_400_000  # 2024-08-01 00:00 UTC
SYM = "ABC/USDT:USDT"


def write_series(folder, prices: list[float]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["timestamp_ms,open,high,low,close,volume"]
    for i, p in enumerate(prices):
        rows.append(f"{T0 + i * M5},{p},{p * 1.001},{p * 0.999},{p},10")
    (folder / "ABC_USDT_USDT-5m-futures.csv").write_text("\n".join(rows) + "\n")


async def replay_market(folder, start_ms: int | None):
    captured = {}

    def keep(sim):
        captured["sim"] = sim
        return sim

    await run_replay(Settings.defaults(), data_dir=folder, start_ms=start_ms, max_steps=1, exchange_wrapper=keep,
                     reference=False, funding=False)
    return captured["sim"].market(SYM)


async def test_later_prices_of_another_scale_do_not_change_the_precision_at_the_start(tmp_path):
    # 60 warm-up candles near 5 USDT, then the series trades near 500 (a redenomination, a
    # different contract): the median of the WHOLE series is about 500
    warm = [5.0 + 0.01 * i for i in range(60)]
    later = [500.0 + i for i in range(140)]
    write_series(tmp_path / "full", warm + later)
    write_series(tmp_path / "cut", warm + later[:2])  # the same start, the future cut off
    start = T0 + 60 * M5  # the replay starts after the warm-up
    full = await replay_market(tmp_path / "full", start)
    cut = await replay_market(tmp_path / "cut", start)
    # sized to the warm-up's 5 USDT: a tick of 1e-4 of the price, a contract of 1 coin
    assert full.price_step == Decimal("0.0001") and full.contract_size == Decimal(1)
    assert (full.price_step, full.contract_size) == (cut.price_step, cut.contract_size)
    # what the whole series would have given (the old, look-ahead sizing)
    assert demo_market(SYM, [Candle(T0, p, p, p, p, 1.0) for p in warm + later]).price_step == Decimal("0.01")


async def test_without_a_warm_up_the_first_candle_sizes_the_market(tmp_path):
    write_series(tmp_path / "d", [0.5] + [90.0] * 50)
    m = await replay_market(tmp_path / "d", None)
    assert m.price_step == Decimal("0.00001") and m.contract_size == Decimal(10)


def test_known_at_start_keeps_the_closed_candles_only():
    cs = [Candle(T0 + i * M5, 1.0, 1.0, 1.0, 1.0, 1.0) for i in range(10)]
    assert known_at_start(cs, T0 + 3 * M5, M5) == cs[:3]  # closed by the start
    assert known_at_start(cs, T0, M5) == cs[:1]  # nothing closed yet: the first price
    assert known_at_start([], T0, M5) == []
