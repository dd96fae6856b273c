"""Loopback venues with HISTORY endpoints, for `crot download` (engine/market/download.py).

`FakeHtxHistory` extends `FakeHtxVenue` (tests/fake_htx_venue.py, not edited here) with:

| request | what the venue does |
|---|---|
| GET /linear-swap-ex/market/history/kline | as the base venue (closed candles by the venue clock plus the forming one; `size` wins over from/to), and stricter: a from/to window holding more than 2000 candle slots is refused (HTX: "invalid size, valid range: [1,2000]"); a contract in `kline_missing` (or unknown) is answered with HTX's 1013 "This contract symbol doesnt exist." in the old-API error shape |
| GET /v5/market/funding_rate_history | the recorded funding events of `funding_history` with `start_time <= funding_time <= end_time` (ms) that are settled by the venue clock, NEWEST FIRST, at most `limit` (default 10; a `limit` outside 1..100 refused with 1067) and at most `funding_serve_max` (default 100): a window holding more events gives its newest ones only |

`limit` at most 100 is ccxt 4.5.90's own cap for this endpoint (htx.fetch_funding_rate_history:
"max 100"); the newest-first order and the default of 10 are assumptions chosen to be hostile:
a client that pages forward from `start_time` without a window silently loses events here.
`funding_serve_max=50` is a venue that serves fewer rows than asked, without an error: 50 is
the page size HTX documents for the same history on its v1 endpoint
(/linear-swap-api/v1/swap_historical_funding_rate, page_size "50 at most [1-50]"; copy in
rosssaunders/coincise docs/htx/endpoints/private/get_general_query_historical_funding_rate.md).

`FakeMexcHistory` is a loopback MEXC USDT-M contract venue (public endpoints only) on
`engine.exchange.testing.LoopbackServer`:

| request | what the venue does |
|---|---|
| GET /api/v1/contract/detail | the contracts (ccxt's swap market list) |
| GET /api/v1/contract/kline/{SYMBOL}?interval=Min5&start=&end= | candles with start <= open <= end (seconds) closed by the venue clock, plus the forming one, columns as MEXC sends them (`vol` in CONTRACTS, `amount` in USDT); at most 2000 per request: a longer window gives its NEWEST 2000 (MEXC documents the 2000 cap, not which ones) |

Market data (all real recordings, see the PROVENANCE.md files): `perp2024_history()` serves
tests/fixtures/perp2024 (Bybit BTC, ETH, SOL perps, 5m, 2024-07-25 .. 08-08) as HTX's candles,
the demo folder's Binance spot PAXG candles (2024-07-22 .. 07-30) as HTX's PAXG-USDT gold proxy,
the demo folder's Bybit funding events as HTX's funding history, and the demo folder's
reference/ candles (Binance BTC, SOL; Gate.io ETH from 08-01 only) as MEXC's candles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

from engine.exchange.mexc import MexcConfig
from engine.exchange.precision import D, fmt
from engine.exchange.retry import RetryPolicy
from engine.exchange.testing import LoopbackServer, RecordedRequest, Reply
from engine.market.candles import Candle, timeframe_ms
from engine.market.feeds import read_candles_csv, read_funding_csv

from fake_htx_venue import BTC, ETH, Contract, FakeHtxVenue, VenueProtocolError, VenueRequest, _err, _ok

ROOT = Path(__file__).resolve().parents[1]
PERP2024 = ROOT / "tests" / "fixtures" / "perp2024"
DEMO = ROOT / "engine" / "demo_data" / "perp-2024"
SOL, PAXG = "SOL/USDT:USDT", "PAXG/USDT:USDT"
KLINE_MAX = 2000  # HTX and MEXC: at most 2000 candles per kline request
FUNDING_MAX = 100  # HTX v5 funding_rate_history: at most 100 rows (ccxt 4.5.90)
FUNDING_V1_MAX = 50  # HTX v1 swap_historical_funding_rate: page_size [1-50] (HTX API docs)

HISTORY_CONTRACTS: tuple[Contract, ...] = (
    Contract(BTC, "BTC-USDT", Decimal("0.001"), Decimal("0.1")),
    Contract(ETH, "ETH-USDT", Decimal("0.01"), Decimal("0.01")),
    Contract(SOL, "SOL-USDT", Decimal("1"), Decimal("0.001")),
    Contract(PAXG, "PAXG-USDT", Decimal("0.001"), Decimal("0.01")),
)


@dataclass(frozen=True)
class History:
    """What both venues serve: HTX candles and funding, MEXC candles (unified symbols)."""

    candles: dict[str, list[Candle]]
    funding: dict[str, list[tuple[int, Decimal]]]
    reference: dict[str, list[Candle]]


def perp2024_history() -> History:
    candles = {s: read_candles_csv(PERP2024 / f"{s.split('/')[0]}_USDT_USDT-5m-futures.csv") for s in (BTC, ETH, SOL)}
    candles[PAXG] = read_candles_csv(DEMO / "PAXG_USDT-5m.csv.gz")
    funding = {s: [(t, Decimal(repr(r))) for t, r in read_funding_csv(DEMO / f"{s.split('/')[0]}_USDT_USDT-8h-funding_rate.csv.gz")]
               for s in (BTC, ETH, SOL)}
    reference = {s: read_candles_csv(DEMO / "reference" / f"{s.split('/')[0]}_USDT_USDT-5m-futures.csv.gz")
                 for s in (BTC, ETH, SOL)}
    return History(candles, funding, reference)


class FakeHtxHistory(FakeHtxVenue):
    """`FakeHtxVenue` plus kline history paging limits and historical funding (module doc)."""

    def __init__(self, *, funding_history: Mapping[str, list[tuple[int, Decimal]]] | None = None,
                 kline_missing: Iterable[str] = (), funding_serve_max: int = FUNDING_MAX,
                 **kw: Any):
        kw.setdefault("contracts", HISTORY_CONTRACTS)
        super().__init__(**kw)
        self.funding_history = {s: sorted(rows) for s, rows in (funding_history or {}).items()}
        self.funding_serve_max = funding_serve_max  # rows one response holds at most, whatever `limit` asks
        self.kline_missing = set(kline_missing)  # contract codes listed but without kline history
        self.refused: list[VenueRequest] = []  # requests beyond a documented limit

    def _routes(self) -> dict[tuple[str, str], Callable[[VenueRequest], Any]]:
        routes = super()._routes()
        routes[("GET", "/linear-swap-ex/market/history/kline")] = self._kline_history
        routes[("GET", "/v5/market/funding_rate_history")] = self._funding_history
        return routes

    def kline_requests(self, code: str | None = None) -> list[VenueRequest]:
        return [r for r in self.calls("GET", "/linear-swap-ex/market/history/kline")
                if code is None or r.query.get("contract_code") == code]

    def funding_requests(self, code: str | None = None) -> list[VenueRequest]:
        return [r for r in self.calls("GET", "/v5/market/funding_rate_history")
                if code is None or r.query.get("contract_code") == code]

    async def _kline_history(self, rec: VenueRequest) -> dict:
        q = rec.query
        code = q.get("contract_code") or ""
        if code in self.kline_missing or code not in self.by_code:
            return {"status": "error", "err_code": 1013, "err_msg": "This contract symbol doesnt exist.",
                    "ts": self.now_ms}
        if "size" not in q and "from" in q and "to" in q:
            slots = (int(q["to"]) - int(q["from"])) // (self.tf_ms // 1000) + 1
            if slots > KLINE_MAX:
                self.refused.append(rec)
                return {"status": "error", "err-code": "bad-request", "err-msg": "invalid size, valid range: [1,2000]",
                        "ts": self.now_ms}
        return await self._kline(rec)

    async def _funding_history(self, rec: VenueRequest) -> dict:
        q = rec.query
        contract = self._contract(q.get("contract_code"))
        try:
            limit = int(q.get("limit", "10"))
            lo = int(q.get("start_time", "0"))
            hi = int(q.get("end_time", str(self.now_ms)))
        except ValueError:
            raise VenueProtocolError(1067, "Illegal parameter") from None
        if not 1 <= limit <= FUNDING_MAX:
            self.refused.append(rec)
            return _err(1067, "Illegal parameter limit", self.now_ms)
        rows = [(t, r) for t, r in self.funding_history.get(contract.symbol, [])
                if lo <= t <= hi and t <= self.now_ms]
        rows = sorted(rows, reverse=True)[:min(limit, self.funding_serve_max)]  # newest first, the newest ones
        data = [{"id": str(i + 1), "contract_code": contract.code, "funding_rate": fmt(r), "funding_time": str(t)}
                for i, (t, r) in enumerate(rows)]
        return _ok(data, self.now_ms)


# --------------------------------------------------------------------------- MEXC


@dataclass(frozen=True)
class MexcContract:
    symbol: str  # unified
    contract_size: Decimal
    tick: Decimal

    @property
    def venue_id(self) -> str:
        return self.symbol.split(":")[0].replace("/", "_")

    def detail(self) -> dict:
        base = self.symbol.split("/")[0]
        return {"symbol": self.venue_id, "displayName": self.venue_id, "displayNameEn": f"{self.venue_id} SWAP",
                "positionOpenType": 3, "baseCoin": base, "quoteCoin": "USDT", "settleCoin": "USDT",
                "contractSize": float(self.contract_size), "minLeverage": 1, "maxLeverage": 200, "priceScale": 2,
                "volScale": 0, "amountScale": 4, "priceUnit": float(self.tick), "volUnit": 1, "minVol": 1,
                "maxVol": 1000000, "takerFeeRate": 0.0002, "makerFeeRate": 0, "state": 0, "isNew": False,
                "isHot": True, "isHidden": False}


MEXC_CONTRACTS: tuple[MexcContract, ...] = (
    MexcContract(BTC, Decimal("0.0001"), Decimal("0.1")),
    MexcContract(ETH, Decimal("0.01"), Decimal("0.01")),
    MexcContract(SOL, Decimal("1"), Decimal("0.001")),
)


class FakeMexcHistory:
    """Loopback MEXC contract venue serving recorded candles (module doc); `now_ms` is its clock."""

    def __init__(self, series: Mapping[str, list[Candle]], *, contracts: Iterable[MexcContract] = MEXC_CONTRACTS,
                 now_ms: int | Callable[[], int] = 0, timeframe: str = "5m"):
        self.contracts = {c.symbol: c for c in contracts}
        self.series = {s: list(c) for s, c in series.items() if s in self.contracts}
        self.tf_ms = timeframe_ms(timeframe)
        self.interval = {"1m": "Min1", "5m": "Min5", "15m": "Min15", "30m": "Min30", "1h": "Min60"}[timeframe]
        self._now = now_ms
        self.server = LoopbackServer()
        self.refused: list[RecordedRequest] = []

    @property
    def now_ms(self) -> int:
        return self._now() if callable(self._now) else self._now

    async def __aenter__(self) -> FakeMexcHistory:
        await self.server.start()
        self.server.route("GET", "/api/v1/contract/detail",
                          {"success": True, "code": 0, "data": [c.detail() for c in self.contracts.values()]})
        for c in self.contracts.values():
            self.server.route("GET", f"/api/v1/contract/kline/{c.venue_id}", lambda r, c=c: self._kline(c, r))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.stop()

    def config(self, **kw: Any) -> MexcConfig:
        return MexcConfig(contract_url=f"{self.server.base_url}/api/v1/contract", timeout_ms=5_000, rate_limit_ms=1,
                          retry=RetryPolicy(max_attempts=2, base_delay=0.01, seed=1), clock_ms=lambda: self.now_ms, **kw)

    def kline_requests(self, symbol: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.server.requests if r.path.startswith("/api/v1/contract/kline/")
                and (symbol is None or r.path.endswith("/" + self.contracts[symbol].venue_id))]

    def _kline(self, c: MexcContract, r: RecordedRequest) -> Reply:
        if r.query.get("interval") != self.interval:
            self.refused.append(r)
            return Reply({"success": False, "code": 600, "message": f"interval {r.query.get('interval')!r}"})
        try:
            lo = int(r.query["start"]) * 1000
            hi = int(r.query["end"]) * 1000 if "end" in r.query else self.now_ms
        except (KeyError, ValueError):
            self.refused.append(r)
            return Reply({"success": False, "code": 600, "message": "start is required"})
        now = self.now_ms
        rows = []
        for k in self.series.get(c.symbol, []):
            if not lo <= k.ts_ms <= hi or k.ts_ms > now:
                continue
            if k.ts_ms + self.tf_ms > now:  # forming: only its open is known yet
                k = Candle(k.ts_ms, k.open, k.open, k.open, k.open, 0.0)
            rows.append(k)
        rows = rows[-KLINE_MAX:]
        contracts = [float(D(repr(k.volume)) / c.contract_size) for k in rows]
        data = {"time": [k.ts_ms // 1000 for k in rows], "open": [k.open for k in rows],
                "close": [k.close for k in rows], "high": [k.high for k in rows], "low": [k.low for k in rows],
                "vol": contracts, "amount": [k.volume * k.close for k in rows],
                "realOpen": [k.open for k in rows], "realClose": [k.close for k in rows],
                "realHigh": [k.high for k in rows], "realLow": [k.low for k in rows]}
        return Reply({"success": True, "code": 0, "data": data})
