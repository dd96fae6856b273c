"""EMA-pullback strategy: features, the long/short signal, the entry gates and selection.

Pipeline of one cycle (one closed base candle)::

    engine.on_candle(symbol, "5m", candle)  # every symbol; 1h layers aggregated inside
    feats = engine.features_all(ts_ms=ts)   # warm symbols whose candle `ts` arrived
    btc = engine.benchmark(ts)              # for the BTC risk filter
    decs = [evaluate(side, f, btc, p, extra_gates.get(f.symbol, ())) for f in feats.values()]
    sel = select_entries(decs, EntryContext(now_ms=..., ...), p)  # sel.chosen: new ladders

``features_from_history`` gives the same features for recorded series (analysis, backtests).

Every gate has a stable snake_case name (the UI, the audit trail and the analysis tools rely
on them). A decision lists them in this order; ``kind`` is hard (blocks a new entry), penalty
(lowers the score) or info (recorded only). Filters switched off in the settings stay in the
list as info gates. Structure gates (*) gate ``entry_valid`` and ``add_valid`` but never
``valid``.

Signal gates (``evaluate``):
  strategy_enabled        EMA_STRATEGY_ENABLED (1/0).
  macro_trend             directional macro EMA gap (fast - slow) / close > 0 (1h EMA48/120).
  trigger_trend           directional trigger EMA gap (fast - slow) / close > 0 (5m EMA24/72).
  rs_confirmation         rs60 >= EMA_LONG_MIN_RS60 (long) / <= EMA_SHORT_MAX_RS60 (short),
                          if EMA_USE_RS_CONFIRMATION.
  btc_risk                benchmark 30-min log return >= EMA_BTC_LONG_MIN_RETURN_30M (long) /
                          <= EMA_BTC_SHORT_MAX_RETURN_30M (short), if EMA_USE_BTC_RISK_FILTER.
  chop (*)                choppiness of trigger candles <= EMA_CHOP_MAX.
  volume_direction        info: share of recent volume on candles closing the trade's way vs
                          EMA_VOLUME_MIN_DIRECTIONAL_FRACTION (a part of volume_confirmation).
  volume_confirmation (*) recent/base volume ratio >= EMA_VOLUME_MIN_RATIO (and the
                          directional share), or an aligned spike >= EMA_VOLUME_SPIKE_MIN_RATIO.
  adverse_spike (*)       spike/base ratio of the largest recent candle when it closed against
                          the trade, < EMA_VOLUME_ADVERSE_SPIKE_MIN_RATIO; blocks on its own
                          only when the profile filter is off, otherwise info.
  value_area (*)          close vs the value-area low (long) / high (short): blocks when an
                          adverse spike broke the value area against the trade.
  pullback_cross_age      minutes since the pullback EMAs crossed back the trade's way <=
                          min(EMA_PULLBACK_RECOVERY_MAX_CROSS_AGE_MINUTES, ..._LOOKBACK_MINUTES).
  pullback_gap            directional pullback EMA gap (fast - slow) / slow >=
                          EMA_PULLBACK_RECOVERY_GAP. Both pullback gates are penalty gates, hard
                          when EMA_ENTRY_REQUIRE_PULLBACK_RECOVERY.
  min_rs60                directional rs60 >= ENTRY_MIN_RS60_ABS (shortfall also penalised).
  min_rs30                directional rs30 >= ENTRY_MIN_RS30_ABS (shortfall also penalised).
  <extra gates>           from the runtime (macro regime, cross-exchange reference, ...).
  min_score               penalty-adjusted score >= ENTRY_MIN_SCORE.

Portfolio gates (``select_entries``), appended after those:
  entries_paused          entries not paused (operator, panic regime).
  symbol_allowed          symbol is in the entry list.
  position_open           no position or live entry orders on this side.
  reserved_by_other_side  the other side does not hold the symbol.
  cooldown                minutes left of the post-close cooldown <= 0.
  unhealthy_positions     unhealthy positions <= MAX_UNHEALTHY_POSITIONS_FOR_NEW_ENTRIES.
  crowded_market          info: share of entry-list symbols signalling vs
                          ENTRY_CROWDED_SIGNAL_FRACTION (and ENTRY_CROWDED_MIN_SIGNALS).
  crowded_min_rs60        when crowded: directional rs60 >= max(ENTRY_MIN_RS60_ABS,
                          ENTRY_CROWDED_MIN_RS60_ABS), extra shortfall penalised; else info.
  crowded_min_rs30        likewise for rs30.
  crowded_min_score       when crowded: score >= max(ENTRY_MIN_SCORE, ENTRY_CROWDED_MIN_SCORE).
  ladders_per_signal      rank by score <= ENTRY_MAX_NEW_LADDERS_PER_SIGNAL (crowded:
                          ENTRY_CROWDED_MAX_NEW_LADDERS_PER_SIGNAL).
  rate_limit              ladders opened in the last ENTRY_RATE_LIMIT_WINDOW_MINUTES + rank <=
                          ENTRY_RATE_LIMIT_LADDERS.
"""

from .decision import HARD, INFO, PENALTY, Decision, GateResult, fold_score
from .features import (
    CROSS_DOWN,
    CROSS_UP,
    FeatureEngine,
    FeatureParams,
    SymbolFeatures,
    features_at,
    features_from_history,
    frame_to_features,
)
from .selection import (
    SELECTION_GATES,
    EntryContext,
    Selection,
    cooldown_until,
    rejection_counts,
    select_entries,
)
from .signal import PULLBACK_GATES, SIGNAL_GATES, STRUCTURE_GATES, evaluate

__all__ = [
    "PULLBACK_GATES",
    "CROSS_DOWN",
    "CROSS_UP",
    "HARD",
    "INFO",
    "PENALTY",
    "SELECTION_GATES",
    "SIGNAL_GATES",
    "STRUCTURE_GATES",
    "Decision",
    "EntryContext",
    "FeatureEngine",
    "FeatureParams",
    "GateResult",
    "Selection",
    "SymbolFeatures",
    "cooldown_until",
    "evaluate",
    "features_at",
    "features_from_history",
    "fold_score",
    "frame_to_features",
    "rejection_counts",
    "select_entries",
]
