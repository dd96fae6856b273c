"""Market data: closed-candle stores, indicators (vectorised + incremental) and feeds."""

from engine.market.candles import (
    Aggregator,
    Candle,
    CandleStore,
    Gap,
    IngestReport,
    OhlcvArrays,
    SymbolCandles,
    candles_to_arrays,
    is_closed,
    last_closed_open_ts,
    minutes_to_candles,
    timeframe_minutes,
    timeframe_ms,
)
from engine.market.feeds import (
    CandleFeed,
    CcxtFeed,
    FileFeed,
    RecordedFile,
    merge_by_time,
    parse_recorded_filename,
    read_candles_csv,
)

__all__ = [
    "Aggregator",
    "Candle",
    "CandleFeed",
    "CandleStore",
    "CcxtFeed",
    "FileFeed",
    "Gap",
    "IngestReport",
    "OhlcvArrays",
    "RecordedFile",
    "SymbolCandles",
    "candles_to_arrays",
    "is_closed",
    "last_closed_open_ts",
    "merge_by_time",
    "minutes_to_candles",
    "parse_recorded_filename",
    "read_candles_csv",
    "timeframe_minutes",
    "timeframe_ms",
]
