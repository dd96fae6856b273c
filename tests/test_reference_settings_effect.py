"""Reference (MEXC vs HTX) settings in effect (issue 18): each one, changed from its default
in a .env, changes a verdict of `check_reference` on the same two books: a block, the score
the entry would carry, the impulse bonus or the tightened exit ladder.

The books are built as the adapters deliver them (BookTop with best-level sizes); the
scenario of each case sits right at the setting so that only its value decides.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.exchange.types import BookTop
from engine.reference import Lookback, check_reference
from engine.strategy.decision import fold_score
from settings_effect import settings

NOW = 1_722_850_123_457  # unaligned: the reference checks use our clock, not candle times


def top(venue: str, mid: float, spread_bps: float = 2.0, depth: float = 10_000.0, age_ms: int = 150) -> BookTop:
    half = mid * spread_bps / 2e4
    bid, ask = Decimal(str(mid - half)), Decimal(str(mid + half))
    return BookTop(venue, "ETH/USDT:USDT", bid, ask, Decimal(str(depth / (mid - half))),
                   Decimal(str(depth / (mid + half))), None, NOW - age_ms)


def outcome(env: dict[str, object], side: str, htx: BookTop, mexc: BookTop, lookback: Lookback = Lookback()):
    p = settings(**env).side(side)
    r = check_reference(side, htx, mexc, NOW, p, lookback=lookback)
    return (r.status, r.blocked, r.reason.split(":")[0], round(fold_score(1.0, r.gates), 9),
            r.tighten, r.cooldown_until_ms is not None)


FILTER = {"EXTERNAL_PRICE_ENTRY_FILTER_ENABLED": "true"}
# MEXC moved +10 bps over 30 s, HTX +2 bps: the reference led by 8 bps in the long's direction
LED = Lookback(htx_30s=100.0 / 1.0002, mexc_30s=100.0 / 1.0010)

TIGHTEN = {"EXTERNAL_PRICE_EXIT_ADJUSTMENT_ENABLED": "true"}
TIGHTEN_NOW = {**TIGHTEN, "EXTERNAL_PRICE_LONG_TAKE_PROFIT_TIGHTEN_IF_HTX_PREMIUM_BPS": 5}

CASES = {
    # key: (extra env, side, htx book, mexc book, lookback, changed value)
    "EXTERNAL_PRICE_MIN_VALID_BID_QTY_USDT": (FILTER, "long", top("htx", 100.0, depth=100.0),
                                              top("mexc", 100.0, depth=100.0), Lookback(), 200),
    "EXTERNAL_PRICE_MIN_VALID_ASK_QTY_USDT": (FILTER, "short", top("htx", 100.0, depth=100.0),
                                              top("mexc", 100.0, depth=100.0), Lookback(), 200),
    "EXTERNAL_PRICE_MAX_INTERNAL_SPREAD_BPS": (FILTER, "long", top("htx", 100.0, spread_bps=20.0),
                                               top("mexc", 100.0), Lookback(), 10),
    # filter off: a failing premium check is a score penalty of this factor, not a block
    "EXTERNAL_PRICE_SCORE_PENALTY_MULTIPLIER": ({}, "long", top("htx", 100.3), top("mexc", 100.0), Lookback(), 0.8),
    "EXTERNAL_PRICE_MAX_HTX_DISCOUNT_FOR_SHORT_BPS": (FILTER, "short", top("htx", 99.9), top("mexc", 100.0),
                                                      Lookback(), 5),
    # HTX +30 bps over a minute, MEXC flat: 30 bps divergence
    "EXTERNAL_PRICE_BLOCK_IF_EXCHANGE_DIVERGENCE_1M_BPS": (
        FILTER, "long", top("htx", 100.0), top("mexc", 100.0), Lookback(htx_1m=100.0 / 1.003, mexc_1m=100.0), 20),
    # both venues fell 30 bps in a minute: against a long
    "EXTERNAL_PRICE_DIRECTIONAL_ENTRY_1M_BLOCK_BPS": (
        {}, "long", top("htx", 100.0), top("mexc", 100.0), Lookback(htx_1m=100.3, mexc_1m=100.3), 20),
    "EXTERNAL_PRICE_MEXC_LEAD_THRESHOLD_BPS_30S": ({}, "long", top("htx", 100.0), top("mexc", 100.0), LED, 10),
    "EXTERNAL_PRICE_IMPULSE_SCORE_BONUS": ({}, "long", top("htx", 100.0), top("mexc", 100.0), LED, 0.1),
    # HTX 10 bps below the reference: tightens a short's exits only below a 5 bps limit
    "EXTERNAL_PRICE_SHORT_TAKE_PROFIT_TIGHTEN_IF_HTX_DISCOUNT_BPS": (
        {"EXTERNAL_PRICE_EXIT_ADJUSTMENT_ENABLED": "true"}, "short", top("htx", 99.9), top("mexc", 100.0),
        Lookback(), 5),
    # HTX 10 bps above the reference: tightens a long's exits only below a 5 bps limit
    "EXTERNAL_PRICE_LONG_TAKE_PROFIT_TIGHTEN_IF_HTX_PREMIUM_BPS": (
        TIGHTEN, "long", top("htx", 100.1), top("mexc", 100.0), Lookback(), 5),
    # once tightened, the exit ladder is these fractions and markups
    "EXTERNAL_PRICE_TIGHTENED_LADDER_FRACTIONS": (TIGHTEN_NOW, "long", top("htx", 100.1), top("mexc", 100.0),
                                                  Lookback(), "0.5,0.3,0.1,0.1"),
    "EXTERNAL_PRICE_TIGHTENED_LADDER_MARKUPS": (TIGHTEN_NOW, "long", top("htx", 100.1), top("mexc", 100.0),
                                                Lookback(), "0.004,0.008,0.015,none"),
    # a 2.5 s old reference quote: fresh by default (3 s), stale at 2 s
    "EXTERNAL_PRICE_STALE_AFTER_MS": ({**FILTER, "EXTERNAL_PRICE_MAX_PRICE_AGE_MS": 10_000}, "long", top("htx", 100.0),
                                      top("mexc", 100.0, age_ms=2_500), Lookback(), 2_000),
}


@pytest.mark.parametrize("key", sorted(CASES))
def test_a_reference_setting_changes_the_verdict_on_the_same_books(key):
    env, side, htx, mexc, lookback, changed = CASES[key]
    before = outcome(env, side, htx, mexc, lookback)
    after = outcome({**env, key: changed}, side, htx, mexc, lookback)
    assert before != after, f"{key}={changed} changed nothing: {before}"


def test_the_changes_go_the_documented_way():
    """Spot checks of the direction: a tighter limit blocks, a bigger bonus scores higher."""
    c = CASES
    for key in ("EXTERNAL_PRICE_MIN_VALID_BID_QTY_USDT", "EXTERNAL_PRICE_MAX_INTERNAL_SPREAD_BPS",
                "EXTERNAL_PRICE_MAX_HTX_DISCOUNT_FOR_SHORT_BPS", "EXTERNAL_PRICE_DIRECTIONAL_ENTRY_1M_BLOCK_BPS"):
        env, side, htx, mexc, lb, changed = c[key]
        assert not outcome(env, side, htx, mexc, lb)[1] and outcome({**env, key: changed}, side, htx, mexc, lb)[1]
    env, side, htx, mexc, lb, _ = c["EXTERNAL_PRICE_BLOCK_IF_EXCHANGE_DIVERGENCE_1M_BPS"]
    blocked = outcome({**env, "EXTERNAL_PRICE_BLOCK_IF_EXCHANGE_DIVERGENCE_1M_BPS": 20}, side, htx, mexc, lb)
    assert blocked[1] and blocked[2] == "ref_divergence_1m" and blocked[5]  # and a symbol cooldown starts
    env, side, htx, mexc, lb, _ = c["EXTERNAL_PRICE_SCORE_PENALTY_MULTIPLIER"]
    assert outcome(env, side, htx, mexc, lb)[3] == pytest.approx(0.5)
    assert outcome({"EXTERNAL_PRICE_SCORE_PENALTY_MULTIPLIER": 0.8}, side, htx, mexc, lb)[3] == pytest.approx(0.8)
    env, side, htx, mexc, lb, _ = c["EXTERNAL_PRICE_IMPULSE_SCORE_BONUS"]
    assert outcome({"EXTERNAL_PRICE_IMPULSE_SCORE_BONUS": 0.1}, side, htx, mexc, lb)[3] == pytest.approx(1.1)
    assert outcome({"EXTERNAL_PRICE_MEXC_LEAD_THRESHOLD_BPS_30S": 10}, side, htx, mexc, lb)[3] == pytest.approx(1.0)


def test_a_tightened_exit_ladder_is_the_settings_ladder():
    env, side, htx, mexc, lb, _ = CASES["EXTERNAL_PRICE_TIGHTENED_LADDER_MARKUPS"]
    assert outcome(env, side, htx, mexc, lb)[4] == ((0.4, 0.3, 0.2, 0.1), (0.005, 0.01, 0.02, None))
    mine = outcome({**env, "EXTERNAL_PRICE_TIGHTENED_LADDER_FRACTIONS": "0.5,0.3,0.1,0.1",
                    "EXTERNAL_PRICE_TIGHTENED_LADDER_MARKUPS": "0.004,0.008,0.015,none"}, side, htx, mexc, lb)
    assert mine[4] == ((0.5, 0.3, 0.1, 0.1), (0.004, 0.008, 0.015, None))
    env, side, htx, mexc, lb, _ = CASES["EXTERNAL_PRICE_STALE_AFTER_MS"]
    assert outcome(env, side, htx, mexc, lb)[0] == "ok"
    assert outcome({**env, "EXTERNAL_PRICE_STALE_AFTER_MS": 2_000}, side, htx, mexc, lb)[0] == "stale"
