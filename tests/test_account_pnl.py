"""The account-PnL guard's pure module (issue 18): the shared series and its three decisions.

One test (or parametrised case) per ACCOUNT_* setting shows that changing it changes a
decision; hypothesis checks the bounds (percentiles within the samples, the window and the
sample count bounded, samples at least the interval apart)."""

from __future__ import annotations

from decimal import Decimal as Dec

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from engine.exchange.types import Market, Position
from engine.risk import account_pnl as ap
from engine.settings import Settings

MIN = 60_000
T0 = 1_722_470_400_000 + 3_217  # unaligned
M = Market("ETH/USDT:USDT", "ETH-USDT", "ETH", "USDT", contract_size=Dec(1), amount_step=Dec(1),
           price_step=Dec("0.01"), min_amount=Dec(1), min_notional=None)


def prof(**kw):
    return Settings.defaults().side("long").model_copy(update=kw)


def view(values, pnl=None, notional=1000.0, now=None, step_ms=31_117, since=-1):
    """A view whose samples are `values` (PnL, oldest first) and whose current reading is the
    last one (or `pnl`, taken after the last sample)."""
    samples = tuple(ap.Sample(T0 + i * step_ms, v, notional) for i, v in enumerate(values))
    if pnl is None:
        return ap.AccountView(samples[-1].ts_ms, values[-1], notional, samples, since)
    return ap.AccountView(now or samples[-1].ts_ms + 7_001, pnl, notional, samples, since)


# -- percentiles, the series ---------------------------------------------------------------------
def test_quantile_interpolates():
    assert ap.quantile([], 0.5) == 0.0
    assert ap.quantile([3.0], 0.9) == 3.0
    assert ap.quantile([4.0, 1.0, 3.0, 2.0], 0.0) == 1.0
    assert ap.quantile([4.0, 1.0, 3.0, 2.0], 1.0) == 4.0
    assert ap.quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.75) == 4.0
    assert ap.quantile([1.0, 2.0], 0.25) == pytest.approx(1.25)


@hsettings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60),
       st.floats(0, 1), st.floats(0, 1))
def test_quantile_stays_within_the_samples_and_grows_with_q(values, q1, q2):
    lo, hi = sorted((q1, q2))
    a, b = ap.quantile(values, lo), ap.quantile(values, hi)
    assert min(values) - 1e-6 <= a <= b + 1e-6 and b <= max(values) + 1e-6


@hsettings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 400_000), st.floats(-500, 500, allow_nan=False),
                          st.floats(0, 1e5, allow_nan=False)), min_size=1, max_size=150),
       st.integers(1, 90), st.integers(0, 120))
def test_the_window_stays_bounded_and_samples_keep_the_interval(steps, window_min, interval_s):
    series = ap.AccountPnlSeries(window_min * MIN, interval_s * 1000)
    t = T0
    for gap, pnl, value in steps:
        t += gap
        series.observe(t, pnl, value)
        ts = [s.ts_ms for s in series.samples]
        assert len(ts) <= ap.MAX_SAMPLES
        assert all(t - window_min * MIN <= x <= t for x in ts)
        assert all(b - a >= interval_s * 1000 for a, b in zip(ts, ts[1:]))
        v = series.view()
        assert v is not None and v.trough <= v.pnl <= v.peak
        assert min(v.values) - 1e-9 <= v.percentile(0.5) <= max(v.values) + 1e-9


def test_sampling_follows_the_interval_of_the_step_clock():
    s = ap.AccountPnlSeries(360 * MIN, 30_000)
    assert s.observe(T0, 1.0, 100.0)
    assert not s.observe(T0 + 17_311, 2.0, 100.0)  # between samples: a reading, no sample
    assert s.view().pnl == 2.0 and len(s.samples) == 1
    assert s.observe(T0 + 30_000, 3.0, 100.0)
    every = ap.AccountPnlSeries(360 * MIN, 0)  # ACCOUNT_PNL_SAMPLE_INTERVAL_SEC=0: every step
    assert all(every.observe(T0 + i * 1_013, float(i), 1.0) for i in range(5)) and len(every.samples) == 5


def test_old_samples_leave_the_window_and_a_clock_going_back_drops_later_ones():
    s = ap.AccountPnlSeries(10 * MIN, 0)
    for i in range(30):
        s.observe(T0 + i * MIN + 211, float(i), 1.0)
    assert [x.pnl for x in s.samples][0] == 19.0  # the last 10 minutes
    s.observe(T0 + 25 * MIN, 0.5, 1.0)
    assert max(x.ts_ms for x in s.samples) <= T0 + 25 * MIN


def test_the_state_round_trips_and_restores_the_window():
    s = ap.AccountPnlSeries(60 * MIN, 30_000)
    for i in range(8):
        s.observe(T0 + i * 31_001, float(i) - 3, 500.0)
    s.disarm_trailing("long", T0 + 5)
    back = ap.AccountPnlSeries.from_state(s.to_state(), 60 * MIN, 30_000)
    assert list(back.samples) == list(s.samples) and back.trail_since == {"long": T0 + 5}
    assert ap.AccountPnlSeries.from_state(None, 1, 1).samples == type(s.samples)()


def test_series_params_and_the_enable_switch():
    assert ap.series_params([prof(), prof()]) == (360 * MIN, 30_000)
    assert ap.series_params([prof(account_pnl_window_minutes=60.0, account_pnl_sample_interval_sec=5.0),
                             prof(account_pnl_window_minutes=120.0)]) == (120 * MIN, 5_000)
    assert ap.series_params([prof(account_pnl_enabled=False), prof(account_pnl_enabled=False)]) is None
    assert ap.series_params([prof(account_pnl_enabled=False), prof(account_pnl_window_minutes=90.0)])[0] == 90 * MIN


def test_a_profile_reads_the_series_through_its_own_window():
    s = ap.AccountPnlSeries(360 * MIN, 0)
    for i in range(120):
        s.observe(T0 + i * MIN + 97, 50.0 if i < 60 else 1.0, 100.0)
    assert s.view(ap.window_ms(prof()), "long").peak == 50.0
    assert s.view(ap.window_ms(prof(account_pnl_window_minutes=30.0)), "long").peak == 1.0


def test_open_pnl_of_both_sides():
    a = Position("A", "long", Dec(10), Dec(100), None, Dec(0), None, None)
    b = Position("B", "short", Dec(4), Dec(50), None, Dec(0), None, None)
    mk = {"A": M, "B": M}
    pnl, value = ap.open_pnl([a, b], {"A": Dec(102), "B": Dec(49)}, mk)
    assert pnl == pytest.approx(20 + 4) and value == pytest.approx(1020 + 196)
    assert ap.open_pnl([a, b], {"A": Dec(102)}, mk) == (pytest.approx(20.0), pytest.approx(1020.0))


# -- profit unload -------------------------------------------------------------------------------
ON = dict(account_profit_unload_enabled=True)
RISING = [1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0]  # current 10: at the top of the window


def test_unload_near_the_top_of_the_range():
    u = ap.unload_decision(prof(**ON), view(RISING))
    assert u is not None and u.fraction == 0.25 and "account profit unload" in u.reason


@pytest.mark.parametrize("kw, v", [
    ({"account_profit_unload_enabled": False}, view(RISING)),
    ({"account_pnl_enabled": False}, view(RISING)),
    ({"account_profit_unload_min_pnl_quote": 12.0}, view(RISING)),
    ({"account_profit_unload_min_pnl_rate": 0.02}, view(RISING)),  # 10 < 2% of 1000
    ({}, view(RISING, pnl=5.0)),  # below the 75th percentile
    ({"account_profit_unload_percentile": 0.95}, view(RISING, pnl=8.5)),
], ids=["off", "pnl-off", "min-quote", "min-rate", "not-at-top", "percentile"])
def test_no_unload_without_its_conditions(kw, v):
    assert ap.unload_decision(prof(**{**ON, **kw}), v) is None


def test_the_percentile_setting_moves_the_threshold():
    assert ap.unload_decision(prof(**ON, account_profit_unload_percentile=0.5), view(RISING, pnl=5.0)) is not None


def test_unload_fractions():
    assert ap.unload_decision(prof(**ON, account_profit_unload_fraction=0.4), view(RISING)).fraction == 0.4
    # fallen 30% from the peak 20 (the 75th percentile stays below): the larger drawdown share
    fallen = view([1.0, 2.0, 3.0, 20.0, 14.0, 14.0, 14.0, 14.0])
    assert ap.unload_decision(prof(**ON), fallen).fraction == 0.5
    assert ap.unload_decision(prof(**ON, account_profit_unload_drawdown_fraction=0.7), fallen).fraction == 0.7
    assert ap.unload_decision(prof(**ON, account_profit_unload_peak_drawdown_fraction=0.35), fallen).fraction == 0.25
    assert ap.unload_decision(prof(**ON, account_profit_unload_full_pnl_quote=10.0), view(RISING)).fraction == 1.0
    assert ap.unload_decision(prof(**ON, account_profit_unload_full_pnl_quote=11.0), view(RISING)).fraction == 0.25


def test_which_positions_are_unloaded():
    p = prof(**ON)
    assert ap.position_unloadable(p, 1.0, 500.0, None, T0)
    assert not ap.position_unloadable(p, 0.4, 100.0, None, T0)  # below MIN_POSITION_PNL_QUOTE 0.5
    assert ap.position_unloadable(prof(account_profit_unload_min_position_pnl_quote=0.3), 0.4, 100.0, None, T0)
    assert not ap.position_unloadable(p, 0.6, 1000.0, None, T0)  # 0.06% < MIN_POSITION_PNL_RATE 0.1%
    assert ap.position_unloadable(prof(account_profit_unload_min_position_pnl_rate=0.0005), 0.6, 1000.0, None, T0)
    assert not ap.position_unloadable(p, 5.0, 500.0, T0, T0 + 299_000)  # the cooldown (300 s)
    assert ap.position_unloadable(p, 5.0, 500.0, T0, T0 + 300_000)
    assert ap.position_unloadable(prof(account_profit_unload_cooldown_sec=60.0), 5.0, 500.0, T0, T0 + 61_000)


def test_the_amount_rounds_down_to_the_step_and_respects_the_minimums():
    assert ap.unload_amount(Dec(10), 0.25, Dec(100), M) == Dec(2)
    assert ap.unload_amount(Dec(10), 1.0, Dec(100), M) == Dec(10)
    assert ap.unload_amount(Dec(3), 0.25, Dec(100), M) == Dec(0)  # 0.75 -> 0: below one contract
    assert ap.unload_amount(Dec(10), 0.5, Dec(100), M, dust_notional=600.0) == Dec(10)  # the rest is dust


# -- averaging -----------------------------------------------------------------------------------
AV = dict(account_averaging_enabled=True, account_averaging_min_samples=4)
TROUGH = [5.0, 0.0, -5.0, -10.0, -12.0, -11.5]  # bottomed at -12, now -11.5 and rising


def test_averaging_near_the_trough_once_it_stops_falling():
    g = ap.averaging_guard(prof(**AV), view(TROUGH))
    assert g.enabled and g.allowed and g.scale == 0.5


@pytest.mark.parametrize("kw, values, allowed", [
    ({}, [5.0, 0.0, -5.0, -10.0, -12.0, -2.0], False),  # well above the trough
    ({"account_averaging_near_trough_quote": 11.0}, [5.0, 0.0, -5.0, -10.0, -12.0, -2.0], True),
    ({"account_averaging_near_trough_fraction": 0.9, "account_averaging_percentile": 0.0},
     [5.0, 0.0, -5.0, -10.0, -12.0, -2.0], True),
    ({"account_averaging_percentile": 0.9}, [5.0, 0.0, -5.0, -10.0, -12.0, -2.0], True),
    ({}, [5.0, 0.0, -5.0, -10.0, -12.0, -12.5], False),  # still falling at the trough: wait for the bounce
    ({"account_averaging_bounce_quote": 0.0}, [5.0, 0.0, -5.0, -10.0, -12.0, -12.5], True),
    ({"account_averaging_min_samples": 7}, [5.0, 0.0, -5.0, -10.0, -12.0, -12.5], True),  # not applied yet
    ({"account_averaging_enabled": False}, [5.0, 0.0, -5.0, -10.0, -12.0, -2.0], True),
    ({"account_pnl_enabled": False}, [5.0, 0.0, -5.0, -10.0, -12.0, -2.0], True),
], ids=["far", "trough-quote", "trough-fraction", "percentile", "falling", "bounce-off", "min-samples",
        "off", "pnl-off"])
def test_averaging_permission(kw, values, allowed):
    assert ap.averaging_guard(prof(**{**AV, **kw}), view(values)).allowed is allowed


def test_the_falling_guard():
    # the trough was at -20; now -14, having dropped 3 since the last sample: blocked by the
    # guard (max(1, 5% of 14)) but not by the bounce rule (6 above the trough)
    values = [0.0, -10.0, -20.0, -15.0, -11.0]
    near = dict(AV, account_averaging_near_trough_quote=8.0)
    assert not ap.averaging_guard(prof(**near), view(values, pnl=-14.0)).allowed
    assert ap.averaging_guard(prof(**near, account_averaging_falling_guard_quote=3.5), view(values, pnl=-14.0)).allowed
    assert ap.averaging_guard(prof(**near, account_averaging_falling_guard_fraction=0.25),
                              view(values, pnl=-14.0)).allowed  # 25% of 14 = 3.5


def test_the_budget_scale_applies_while_the_guard_is_on():
    assert ap.budget_scale(prof()) == 1.0  # ACCOUNT_AVERAGING_ENABLED off by default
    assert ap.budget_scale(prof(account_averaging_enabled=True)) == 0.5
    assert ap.budget_scale(prof(account_averaging_enabled=True, account_averaging_budget_scale=0.2)) == 0.2
    assert ap.budget_scale(prof(account_averaging_enabled=True, account_pnl_enabled=False)) == 1.0


# -- account trailing stop -----------------------------------------------------------------------
TR = dict(account_pnl_trailing_enabled=True)
PEAKED = [10.0, 30.0, 55.0, 40.0]  # rate 1%, 3%, 5.5%, 4% of 1000; now 3%


def test_trailing_fires_after_the_peak_when_the_rate_falls_to_the_stop():
    assert "trailing stop" in ap.trailing_reason(prof(**TR), view(PEAKED, pnl=30.0))
    assert ap.trailing_reason(prof(**TR), view(PEAKED, pnl=40.0)) == ""  # 4% > the 3.5% stop


@pytest.mark.parametrize("kw, pnl, fires", [
    ({"account_pnl_trailing_enabled": False}, 30.0, False),
    ({"account_pnl_enabled": False}, 30.0, False),
    ({"account_pnl_trailing_activation_rate": 0.06}, 30.0, False),  # never armed
    ({"account_pnl_trailing_stop_rate": 0.045}, 40.0, True),
    ({"account_pnl_trailing_min_pnl_quote": 35.0}, 30.0, False),
    ({}, -5.0, False),  # below the 0 minimum PnL: not a profit lock any more
    ({"account_pnl_trailing_min_pnl_quote": 0.0}, 0.0, True),
], ids=["off", "pnl-off", "activation", "stop-rate", "min-pnl", "loss", "at-zero"])
def test_trailing_settings(kw, pnl, fires):
    assert bool(ap.trailing_reason(prof(**{**TR, **kw}), view(PEAKED, pnl=pnl))) is fires


def test_firing_disarms_the_trailing_stop():
    v = view(PEAKED, pnl=30.0)
    disarmed = ap.AccountView(v.now_ms, v.pnl, v.notional, v.samples, trail_since_ms=v.samples[-1].ts_ms)
    assert ap.trailing_reason(prof(**TR), disarmed) == ""
