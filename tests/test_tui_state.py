"""The TUI's pure parts: event formatting, the coalescing UI state, number formats, themes,
and the command line's mode choice. No terminal needed."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from crot_tui import fmt, themes
from crot_tui.logsink import EventFormatter
from crot_tui.state import EquityHistory, UiState
from engine.exchange.errors import register_secret
from engine.runtime import events as ev

D = Decimal


def pos(symbol: str, side: str = "long", stop: str | None = "0.9", contracts: str = "2") -> ev.PositionView:
    return ev.PositionView(side, symbol, side, D(contracts), D("1.0"), D("1.01"), D("2.02"), D("0.02"),
                           D(stop) if stop else None, 0.1 if stop else None, "normal", 1, 2, False, 1_000)


def order(symbol: str, action: str, purpose: str = "stop", cid: int = 1, price: str = "0.9") -> ev.OrderEvent:
    return ev.OrderEvent(5_000, "long", symbol, action, purpose, cid, "sell", D(price), D(2), True, "protect")


# -- formatting -----------------------------------------------------------------------------------
def test_prices_never_use_exponents_and_keep_significant_digits() -> None:
    assert fmt.price(D("0.000045760")) == "0.000045760"
    assert fmt.price(0.029147) == "0.029147"
    assert fmt.price(43123.5) == "43124"
    assert fmt.price(None) == "-"
    assert fmt.price(float("nan")) == "-"
    assert fmt.pct(0.0123, 1) == "1.2%"
    assert fmt.money(D("-1.5"), 2, sign=True) == "-1.50"
    assert fmt.gate_value(float("inf")) == "inf"
    assert fmt.ts(0) == ""  # status events carry no time: never the wall clock
    assert fmt.ts(1515560400000) == "2018-01-10 05:00"


def test_log_lines_for_important_events_only() -> None:
    f = EventFormatter()
    assert f(ev.Decisions(1, "long", (), ())) is None
    assert f(ev.Positions(1, "long", ())) is None
    assert f(ev.Account(1, D(1), D(1), D(0), D(0), D(0), D(0))) is None
    line = f(order("ETH/BTC", "placed", "entry"))
    assert line is not None and "order  long  ETH/BTC placed entry sell 2 @ 0.90000" in line.text
    assert f(order("ETH/BTC", "placed", "stop")) is None  # the StopEvent says it, with the reason
    stop = f(ev.StopEvent(5_000, "long", "ETH/BTC", "placed", D("0.9"), D(2), "protect"))
    assert stop is not None and stop.level == logging.INFO and "trigger 0.90000 x2 (protect)" in stop.text
    missing = f(ev.StopEvent(5_000, "long", "ETH/BTC", "missing", None, D(2)))
    assert missing is not None and missing.level == logging.ERROR
    trade = f(ev.TradeClosed(7_200_000, "long", "ETH/BTC", "long", D(1), D("1.1"), D(2), D("0.19"), D("0.01"),
                             3_600_000, "exit"))
    assert trade is not None and "closed pnl +0.1900" in trade.text and "held 1h00" in trade.text


def test_regime_change_is_logged_once_for_both_profiles() -> None:
    f = EventFormatter()
    a = ev.Regime(10, "risk_off", "neutral", {"profile": "long"})
    b = ev.Regime(10, "risk_off", "neutral", {"profile": "short"})
    assert f(a) is not None
    assert f(b) is None
    assert f(ev.Regime(20, "risk_off", "risk_off", {})) is None  # no change


def test_premium_logged_when_a_block_starts_and_ends() -> None:
    f = EventFormatter()
    ok = ev.Premium(1, "ETH/BTC", 3.0, 1.0, 100, False)
    blocked = ev.Premium(2, "ETH/BTC", 80.0, 1.0, 100, True, "premium too high")
    assert f(ok) is None
    line = f(blocked)
    assert line is not None and line.level == logging.WARNING and "blocked +80.0 bps" in line.text
    assert f(blocked) is None
    assert "unblocked" in f(ok).text  # type: ignore[union-attr]


def test_log_lines_are_redacted() -> None:
    register_secret("sekret-api-key-123456")
    f = EventFormatter()
    line = f(ev.ErrorEvent(1, "auth", "bad key sekret-api-key-123456 in https://x.test/a?Signature=abc"))
    assert line is not None
    assert "sekret-api-key-123456" not in line.text and "Signature=abc" not in line.text


# -- the coalescing state ---------------------------------------------------------------------------
def test_latest_positions_per_profile_and_dirty_panes() -> None:
    s = UiState()
    s.feed(ev.Positions(1, "long", (pos("A"),)))
    s.feed(ev.Positions(2, "long", (pos("A"), pos("B"))))
    s.feed(ev.Positions(2, "short", (pos("C", "short"),)))
    assert [p.symbol for p in s.all_positions()] == ["A", "B", "C"]
    dirty = s.take_dirty()
    assert {"positions", "stops"} <= dirty
    assert s.take_dirty() == set()


def test_stops_follow_orders_and_positions() -> None:
    s = UiState()
    s.feed(ev.Positions(1, "long", (pos("A", stop=None),)))
    assert s.stops == {}  # the pane shows this position as NO STOP
    s.feed(order("A", "placed", cid=7))
    assert [r.status for r in s.stops.values()] == ["open"]
    s.feed(order("A", "placed", cid=8))  # replacement placed before the old one is cancelled
    s.feed(order("A", "cancelled", cid=7))
    assert [r.client_order_id for r in s.stops.values()] == [8]
    s.feed(ev.StopEvent(2, "long", "A", "missing", None, D(2), "not on the exchange"))
    assert sorted(r.status for r in s.stops.values()) == ["missing", "open"]
    s.feed(ev.Positions(3, "long", ()))  # closed: its stop is gone too
    assert s.stops == {}


def test_stop_derived_from_a_position_when_no_order_event_was_seen() -> None:
    s = UiState()
    s.feed(ev.Positions(1, "short", (pos("A", "short", stop="1.2"),)))
    (row,) = s.stops.values()
    assert (row.status, row.trigger) == ("derived", D("1.2"))
    s.feed(ev.OrderEvent(2, "short", "A", "adopted", "stop", 9, "buy", D("1.2"), D(2), True))
    (row,) = s.stops.values()
    assert (row.status, row.client_order_id) == ("open", 9)


def test_regime_history_and_closes_ring() -> None:
    s = UiState(ring=3)
    s.feed(ev.Regime(10, "neutral", "", {"profile": "long"}))
    s.feed(ev.Regime(10, "neutral", "", {"profile": "short"}))
    s.feed(ev.Regime(20, "risk_off", "neutral", {"profile": "long", "reason": "gold up"}))
    assert [(h.regime, h.profiles) for h in s.regime_history] == [("neutral", ("long", "short")),
                                                                   ("risk_off", ("long",))]
    assert s.regimes["long"].regime == "risk_off"


def test_equity_history_stays_bounded_but_spans_the_run() -> None:
    h = EquityHistory(size=10)
    for i in range(1000):
        h.add(float(i))
    assert len(h.series) <= 10
    assert h.series[0] == 0.0 and h.series[-1] == 999.0


def test_log_lines_get_increasing_sequence_numbers() -> None:
    s = UiState(log_limit=3)
    for i in range(5):
        s.feed(ev.ErrorEvent(i + 1, "x", f"e{i}"))
    assert [ln.seq for ln in s.log] == [3, 4, 5]
    assert [ln.seq for ln in s.take_log()] == [3, 4, 5]
    assert s.errors == 5


# -- themes ---------------------------------------------------------------------------------------
def test_every_theme_file_parses_with_a_full_palette() -> None:
    names = themes.names()
    assert {"dark", "light", "contrast"} <= set(names)
    for name in names:
        t = themes.load(name)
        for key in ("primary", "accent", "warning", "error", "success", "foreground", "background"):
            assert key in t.palette, (name, key)
        assert "$primary:" not in t.css  # declarations become the Textual theme, not rules
        assert {"crot-long", "crot-short", "crot-muted"} <= set(t.variables)
    assert themes.load("light").dark is False


def test_unknown_theme_names_the_available_ones() -> None:
    with pytest.raises(ValueError, match="available: .*dark"):
        themes.load("no-such-theme")


# -- mode choice ----------------------------------------------------------------------------------
def _args(*argv: str):
    from crot_tui.__main__ import build_parser

    return build_parser().parse_args(list(argv))


def test_demo_is_the_default_without_keys_and_must_be_chosen_with_keys(capsys) -> None:
    from crot_tui.__main__ import choose_mode
    from crot_tui.testing import fast_settings

    assert choose_mode(_args(), fast_settings()) == "demo"
    keyed = fast_settings("HTX_API_KEY=abcd1234\nHTX_API_SECRET=fake-s-5678\n")
    assert choose_mode(_args("--paper"), keyed) == "paper"
    assert choose_mode(_args("--live"), keyed) == "live"
    with pytest.raises(SystemExit) as e:
        choose_mode(_args(), keyed)
    assert e.value.code == 2
    assert "choose --live" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        choose_mode(_args("--live"), fast_settings())
    assert e.value.code == 2


def test_dry_run_in_the_settings_runs_paper_with_keys_and_without() -> None:
    from crot_tui.__main__ import choose_mode
    from crot_tui.testing import fast_settings

    keyed = fast_settings("HTX_API_KEY=abcd1234\nHTX_API_SECRET=fake-s-5678\nDRY_RUN=true\n")
    assert choose_mode(_args(), keyed) == "paper"  # no question asked: DRY_RUN says paper
    assert choose_mode(_args(), fast_settings("DRY_RUN=true\n")) == "paper"
    assert choose_mode(_args("--demo"), keyed) == "demo"  # an explicit demo still replays


def test_live_runner_is_isolated() -> None:
    from crot_tui.host import load_live_runner

    run_live = load_live_runner()
    assert callable(run_live)
