"""Every setting in effect (issue 18): a setting the engine never reads is a defect.

Two checks that fail when the catalog and the code drift apart:
- every setting not marked planned is read by the product code (engine/ and crot_tui/, outside
  the settings declarations and the generated documents), or its type admits one value only;
- the settings still marked planned ("not yet in effect") are exactly the list below: a new
  planned setting fails the test, and one made effective must leave the list, so the list
  only shrinks and each step is visible in review.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.settings import catalog
from engine.settings.loader import validate_value
from settings_effect import MACHINERY

ROOT = Path(__file__).resolve().parents[1]
#: declarations and generators name every setting; they do not count as reading it
NOT_READERS = ("engine/settings/groups/", "engine/settings/strategy_doc.py", "engine/settings/migrate.py")
#: settings whose type admits a single value (the behaviour is fixed; the key exists for the
#: reference bot's .env): another value is refused, checked below
FIXED = {"POST_ONLY_ENABLED": "false", "REDUCE_ONLY_ENABLED": "false", "QUOTE_CURRENCY": "BTC",
         "ENABLE_RATE_LIMIT": "false", "DEFAULT_TYPE": "spot", "EXTERNAL_PRICE_PRIMARY_EXCHANGE": "binance",
         "MARGIN_MODE": "isolated", "POSITION_MODE": "hedge"}

STILL_PLANNED = frozenset((ROOT / "tests/fixtures/planned_settings.txt").read_text().split())


def _product_code() -> str:
    parts = []
    for base in ("engine", "crot_tui"):
        for p in sorted((ROOT / base).rglob("*.py")):
            rel = p.relative_to(ROOT).as_posix()
            if not rel.startswith(NOT_READERS) and rel not in NOT_READERS:
                parts.append(p.read_text(encoding="utf-8"))
    return "\n".join(parts)


def test_every_setting_in_effect_is_read_by_the_product_code():
    code = _product_code()
    unread = [info.key for info in catalog()
              if not info.planned and info.key not in FIXED
              and not re.search(r"[.'\"]" + re.escape(info.name) + r"\b", code) and info.key not in code]
    assert unread == [], f"settings that nothing reads (build their behaviour or mark them planned): {unread}"


@pytest.mark.parametrize("key", sorted(FIXED))
def test_a_fixed_setting_refuses_any_other_value(key):
    with pytest.raises(ValueError):
        validate_value(key, FIXED[key])


def test_the_settings_not_yet_in_effect_are_exactly_the_known_list():
    planned = {info.key for info in catalog() if info.planned}
    assert not planned - STILL_PLANNED, f"new settings without behaviour: {sorted(planned - STILL_PLANNED)}"
    assert not STILL_PLANNED - planned, ("now in effect: remove from tests/fixtures/planned_settings.txt: "
                                         f"{sorted(STILL_PLANNED - planned)}")


def test_every_pct_setting_says_it_holds_a_fraction():
    """Issue 18: `*_PCT` settings hold fractions (0.02 = 2%); their description says so."""
    vague = [i.key for i in catalog() if i.key.endswith("_PCT") and "fraction" not in i.description.lower()]
    assert vague == []


#: settings no test names yet (by key or field name): each needs a test where changing its value
#: changes a decision, an order or a figure (issue 18). The list only shrinks: a new setting
#: comes with its test, and one that gets its test leaves the list. Naming is the cheap check
#: run here; bench/setting_effect_check.py is the proof: with each setting ignored in turn, a
#: test that names it must fail.
WITHOUT_TEST = frozenset((ROOT / "tests/fixtures/settings_without_effect_test.txt").read_text().split())


def _test_code() -> str:
    """The effect tests' code: every test module but those of the settings machinery."""
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests").glob("test_*.py"))
                     if not MACHINERY.search(p.name))


def test_every_setting_is_named_by_a_test_except_the_known_list():
    code = _test_code()
    untested = {info.key for info in catalog() if info.key not in FIXED  # (tested above)
                and info.key not in code and not re.search(r"\b" + re.escape(info.name) + r"\b", code)}
    assert not untested - WITHOUT_TEST, f"settings with no test (write one): {sorted(untested - WITHOUT_TEST)}"
    assert not WITHOUT_TEST - untested, ("now named by a test: remove from "
                                         f"tests/fixtures/settings_without_effect_test.txt: {sorted(WITHOUT_TEST - untested)}")
