"""The entry spread filter (ENTRY_SPREAD_FILTER_*) as a gate in the decision."""

import math
from decimal import Decimal

from engine.exchange.types import BookTop
from engine.runtime.engine import spread_gate
from engine.settings import ProfileSettings


def book(bid, ask):
    return BookTop("htx", "X/USDT:USDT", Decimal(bid), Decimal(ask), None, None, None, 0)


def test_spread_within_limit_passes_and_wide_spread_blocks():
    p = ProfileSettings()
    ok = spread_gate(p, book("100.00", "100.10"))  # 10 bps
    assert ok.passed and ok.kind == "hard" and round(ok.value, 4) == round(0.10 / 100.05 * 1e4, 4)
    wide = spread_gate(p, book("100.00", "100.50"))  # ~50 bps > 30
    assert not wide.passed and wide.blocks


def test_unavailable_book_blocks_only_when_asked():
    assert spread_gate(ProfileSettings(), None).passed
    g = spread_gate(ProfileSettings(entry_spread_filter_block_if_unavailable=True), None)
    assert not g.passed and math.isnan(g.value)


def test_disabled_filter_is_recorded_as_info():
    g = spread_gate(ProfileSettings(entry_spread_filter_enabled=False), book("100", "101"))
    assert g.passed and g.kind == "info"
