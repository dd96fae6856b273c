"""HtxExchange against ccxt's real HTX client, served by a loopback server (no internet).

Every test asserts the exact HTTP requests ccxt 4.5.90 sends: path, query and JSON body.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from decimal import Decimal
from pathlib import Path

import ccxt.async_support as ccxt_async
import pytest

from engine.exchange import errors as E
from engine.exchange.client_ids import client_order_id
from engine.exchange.htx import HtxConfig, HtxExchange
from engine.exchange.retry import RetryPolicy
from engine.exchange.testing import LoopbackServer, Reply, deny_network, load_fixture

FIX = Path(__file__).parent / "fixtures" / "htx"
API_KEY = "AKtest-4f1c2b9e-api-key"
SECRET = "SKtest-9a8b7c6d-secret-value"
BTC, ETH, XRP = "BTC/USDT:USDT", "ETH/USDT:USDT", "XRP/USDT:USDT"
BROKER = "AA03022abc"  # ccxt's own channel_code, sent on every order
NOW_MS = 1_780_970_000_000  # shortly after the fills in order_details.json


def fx(name: str):
    return load_fixture(FIX, name)


def ok(data):
    return {"code": 200, "message": "Success", "data": data, "ts": NOW_MS}


def err(code: int, message: str):
    return {"code": code, "message": message, "data": None, "ts": NOW_MS}


async def _no_sleep(_: float) -> None:
    return None


def policy(attempts: int = 3) -> RetryPolicy:
    return RetryPolicy(max_attempts=attempts, base_delay=0.001, reconcile_delay=0, seed=1, sleep=_no_sleep)


@pytest.fixture
async def server():
    with deny_network() as refused:
        srv = LoopbackServer()
        await srv.start()
        srv.route("GET", "/linear-swap-api/v1/swap_contract_info", fx("swap_contract_info.json"))
        try:
            yield srv
        finally:
            await srv.stop()
    assert refused == [], f"a test tried to reach the internet: {refused}"


@pytest.fixture
async def htx(server):
    exchange = make(server)
    await exchange.load_markets()
    server.requests.clear()
    try:
        yield exchange
    finally:
        await exchange.close()


def make(server: LoopbackServer, *, hostnames=None, timeout_ms=2_000, attempts=3, confirm_orders=False,
         **kw) -> HtxExchange:
    # request-shape tests: the read-backs after placing (confirm_orders) are covered against
    # the fake HTX venue (tests/test_htx_documented.py)
    config = HtxConfig(
        confirm_orders=confirm_orders,
        check_filled_ids=False,  # the fills read before a first order: tests/test_exchange_contract.py
        api_key=API_KEY,
        secret=SECRET,
        hostnames=hostnames or (server.host,),
        scheme="http",
        timeout_ms=timeout_ms,
        rate_limit_ms=1,
        retry=policy(attempts),
        clock_ms=lambda: NOW_MS,
        **kw,
    )
    return HtxExchange(config)


def only(server: LoopbackServer, method: str, path: str):
    calls = server.calls(method, path)
    assert len(calls) == 1, f"expected one {method} {path}, got {len(calls)}: {server.requests}"
    return calls[0]


def assert_signed(request) -> None:
    assert request.query["AccessKeyId"] == API_KEY
    assert request.query["SignatureMethod"] == "HmacSHA256"
    assert request.query["Signature"]


# --------------------------------------------------------------------------- markets


async def test_load_markets_reads_only_linear_swaps(server):
    exchange = make(server)
    try:
        markets = await exchange.load_markets()
    finally:
        await exchange.close()
    assert set(markets) == {BTC, ETH, XRP}  # the dated future is dropped
    btc, xrp = markets[BTC], markets[XRP]
    assert (btc.venue_id, btc.contract_size, btc.price_step, btc.amount_step) == (
        "BTC-USDT",
        Decimal("0.001"),
        Decimal("0.1"),
        Decimal("1"),
    )
    assert btc.min_amount == Decimal("1")  # not ccxt's limits.amount.min (= contract size)
    assert (xrp.contract_size, xrp.price_step) == (Decimal("10"), Decimal("0.0001"))
    request = only(server, "GET", "/linear-swap-api/v1/swap_contract_info")
    assert request.query == {"business_type": "all"}
    assert len(server.requests) == 1  # no spot markets, no currencies


async def test_hostname_failover_after_network_errors(server):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    exchange = make(server, hostnames=(dead, server.host), failover_after=1)
    try:
        markets = await exchange.load_markets()
        assert exchange.hostname == server.host
    finally:
        await exchange.close()
    assert BTC in markets


# --------------------------------------------------------------------------- order placement


async def test_post_only_entry_request(htx, server):
    cid = client_order_id("long", BTC, "entry", "pos1:0")
    server.route("POST", "/v5/trade/order", ok({"order_id": "901", "client_order_id": str(cid)}))
    order = await htx.place_post_only(BTC, "buy", Decimal("3.7"), Decimal("60000.17"), cid)
    request = only(server, "POST", "/v5/trade/order")
    assert_signed(request)
    assert request.body == {
        "contract_code": "BTC-USDT",
        "volume": "3",  # rounded down to whole contracts
        "margin_mode": "cross",
        "side": "buy",
        "time_in_force": "gtc",
        "client_order_id": cid,
        "price": "60000.1",  # post-only buy rounds down
        "type": "post_only",
        "channel_code": BROKER,
    }
    assert (order.id, order.client_order_id, order.amount, order.price) == ("901", cid, Decimal(3), Decimal("60000.1"))
    assert order.post_only and not order.reduce_only and order.status == "open"


async def test_post_only_sell_rounds_up_on_xrp_tick(htx, server):
    server.route("POST", "/v5/trade/order", ok({"order_id": "902", "client_order_id": "5"}))
    await htx.place_post_only(XRP, "sell", Decimal("25"), Decimal("0.51231"), 5)
    body = only(server, "POST", "/v5/trade/order").body
    assert (body["contract_code"], body["price"], body["volume"], body["side"]) == ("XRP-USDT", "0.5124", "25", "sell")


async def test_reduce_only_limit_request(htx, server):
    server.route("POST", "/v5/trade/order", ok({"order_id": "903", "client_order_id": "6"}))
    order = await htx.place_reduce_only_limit(BTC, "long", Decimal("4"), Decimal("64000.01"), 6)
    body = only(server, "POST", "/v5/trade/order").body
    assert body == {
        "contract_code": "BTC-USDT",
        "volume": "4",
        "margin_mode": "cross",
        "side": "sell",  # closes the long
        "time_in_force": "gtc",
        "client_order_id": 6,
        "price": "64000.1",  # an exit sell rounds up
        "reduce_only": 1,
        "type": "limit",
        "channel_code": BROKER,
    }
    assert order.reduce_only and order.side == "sell"


async def test_reduce_only_market_close_request(htx, server):
    server.route("POST", "/v5/trade/order", ok({"order_id": "904", "client_order_id": "7"}))
    await htx.close_reduce_only_market(BTC, "short", Decimal("2.9"), 7)
    body = only(server, "POST", "/v5/trade/order").body
    assert body == {
        "contract_code": "BTC-USDT",
        "volume": "2",
        "margin_mode": "cross",
        "side": "buy",  # closes the short
        "time_in_force": "gtc",
        "client_order_id": 7,
        "reduce_only": 1,
        "type": "market",
        "channel_code": BROKER,
    }


async def test_stop_loss_goes_to_algo_endpoint(htx, server):
    cid = client_order_id("long", BTC, "stop", "pos1:v1")
    server.route("POST", "/v5/algo/order", ok([{"algo_id": "1512871666507657216", "algo_client_order_id": str(cid)}]))
    order = await htx.place_stop_loss(BTC, "long", Decimal("12"), Decimal("61900.25"), cid)
    request = only(server, "POST", "/v5/algo/order")
    assert_signed(request)
    assert request.body == {
        "contract_code": "BTC-USDT",
        "volume": "12",
        "margin_mode": "cross",
        "side": "sell",
        "time_in_force": "gtc",
        "algo_client_order_id": cid,
        "type": "sl",
        "sl_trigger_price": "61900.3",  # a long's stop rounds up, toward the price
        "sl_trigger_price_type": "last",  # v5: last (HTX's default) or mark; a setting
        "channel_code": BROKER,
    }
    assert server.calls("POST", "/v5/trade/order") == []  # never a plain market order
    assert (order.kind, order.trigger_price, order.price, order.id) == (
        "stop_loss",
        Decimal("61900.3"),
        None,
        "1512871666507657216",
    )


async def test_short_stop_rounds_down(htx, server):
    server.route("POST", "/v5/algo/order", ok([{"algo_id": "1", "algo_client_order_id": "9"}]))
    await htx.place_stop_loss(XRP, "short", Decimal("30"), Decimal("0.52347"), 9)
    body = only(server, "POST", "/v5/algo/order").body
    assert (body["side"], body["sl_trigger_price"], body["type"]) == ("buy", "0.5234", "sl")


async def test_ccxt_ignores_a_decimal_stop_price_which_is_why_we_send_strings(htx, server):
    """Canary for the ccxt trap the adapter guards against (safe_number drops Decimals)."""
    server.route("POST", "/v5/trade/order", ok({"order_id": "1", "client_order_id": "1"}))
    raw = htx._ccxt  # the real client the adapter wraps
    await raw.create_order(BTC, "market", "sell", "1", None, {"stopLossPrice": Decimal("60000")})
    assert len(server.calls("POST", "/v5/trade/order")) == 1  # a plain market sell, no stop


async def test_invalid_ids_and_tiny_amounts_send_nothing(htx, server):
    with pytest.raises(E.InvalidOrder):
        await htx.place_post_only(BTC, "buy", Decimal("1"), Decimal("60000"), 2**53)
    with pytest.raises(E.InvalidOrder):
        await htx.place_post_only(BTC, "buy", Decimal("0.9"), Decimal("60000"), 11)
    with pytest.raises(E.InvalidOrder):
        await htx.place_post_only("DOGE/USDT:USDT", "buy", Decimal("1"), Decimal("1"), 12)
    assert server.requests == []


# --------------------------------------------------------------------------- batched reads


async def test_open_orders_include_stops_in_three_batched_reads(htx, server):
    server.route("GET", "/v5/trade/order/opens", fx("order_opens.json"))
    server.route("GET", "/v5/algo/order/opens", lambda r: fx("algo_order_opens_sl.json") if r.query["type"] == "sl" else ok([]))
    orders = await htx.fetch_open_orders()
    assert only(server, "GET", "/v5/trade/order/opens").query.keys() >= {"limit"}
    assert only(server, "GET", "/v5/trade/order/opens").query["limit"] == "50"
    assert "contract_code" not in only(server, "GET", "/v5/trade/order/opens").query
    assert sorted(r.query["type"] for r in server.calls("GET", "/v5/algo/order/opens")) == ["sl", "tp"]
    by_id = {o.id: o for o in orders}
    entry = by_id["1512509978516443136"]
    assert (entry.kind, entry.post_only, entry.side, entry.filled, entry.remaining, entry.client_order_id) == (
        "limit",
        True,
        "buy",
        Decimal("2"),
        Decimal("4"),
        4503599627370497,
    )
    exit_ = by_id["1512509978516443200"]
    assert exit_.reduce_only and not exit_.post_only and exit_.price == Decimal("64500")
    stop = by_id["1512871666507657216"]
    assert (stop.kind, stop.trigger_price, stop.price, stop.reduce_only, stop.client_order_id) == (
        "stop_loss",
        Decimal("61900.3"),
        None,
        True,
        88,
    )
    assert all(o.status == "open" for o in orders) and len(orders) == 3


async def test_full_open_orders_page_falls_back_to_per_symbol(server):
    exchange = make(server, open_orders_page=2, algo_kinds=())
    await exchange.load_markets()
    page = fx("order_opens.json")
    server.route("GET", "/v5/trade/order/opens", lambda r: page if "contract_code" not in r.query else ok(page["data"][:1]) if r.query["contract_code"] == "BTC-USDT" else ok([]))
    try:
        orders = await exchange.fetch_open_orders([BTC, ETH])
        with pytest.raises(E.ExchangeError, match="pass symbols"):
            await exchange.fetch_open_orders()
    finally:
        await exchange.close()
    per_symbol = [r.query.get("contract_code") for r in server.calls("GET", "/v5/trade/order/opens")]
    assert per_symbol[:3] == [None, "BTC-USDT", "ETH-USDT"]
    assert [o.id for o in orders] == ["1512509978516443136"]


async def test_positions_in_one_read(htx, server):
    server.route("GET", "/v5/trade/position/opens", fx("position_opens.json"))
    positions = {p.symbol: p for p in await htx.fetch_positions()}
    assert_signed(only(server, "GET", "/v5/trade/position/opens"))
    btc = positions[BTC]
    assert (btc.side, btc.contracts, btc.entry_price, btc.closeable, btc.leverage, btc.liquidation_price) == (
        "long",
        Decimal("12"),
        Decimal("63204.5"),
        Decimal("4"),
        Decimal("10"),
        Decimal("41210.7"),
    )
    xrp = positions[XRP]
    assert (xrp.side, xrp.contracts, xrp.liquidation_price, xrp.mark_price) == ("short", Decimal("30"), None, Decimal("0.5093"))
    assert [p.symbol for p in await htx.fetch_positions([XRP])] == [XRP]
    assert len(server.calls("GET", "/v5/trade/position/opens")) == 2  # a filter, not a per-symbol read


async def test_balance(htx, server):
    server.route("GET", "/v5/account/balance", fx("account_balance.json"))
    balance = await htx.fetch_balance()
    assert_signed(only(server, "GET", "/v5/account/balance"))
    assert (balance.equity, balance.free, balance.used_margin, balance.unrealized_pnl) == (
        Decimal("1012.5"),
        Decimal("951.3"),
        Decimal("61.2"),
        Decimal("12.5"),
    )


async def test_fills_per_symbol_with_positive_fees(htx, server):
    server.route("GET", "/v5/trade/order/details", lambda r: fx("order_details.json") if r.query["contract_code"] == "BTC-USDT" else ok([]))
    since = NOW_MS - 3_600_000
    fills = await htx.fetch_fills([BTC, ETH], since)
    queries = sorted((r.query["contract_code"], r.query["start_time"], r.query["limit"]) for r in server.calls("GET", "/v5/trade/order/details"))
    # HTX v5 order/details: "maximum limit of 100" (the old 500 was refused by the venue)
    assert queries == [("BTC-USDT", str(since), "100"), ("ETH-USDT", str(since), "100")]
    maker, taker = fills
    assert (maker.maker, maker.fee, maker.amount, maker.price, maker.side) == (True, Decimal("0.02480004"), Decimal(2), Decimal("62000.1"), "buy")
    assert (taker.maker, taker.fee, taker.realized_pnl) == (False, Decimal("0.07522584"), Decimal("-0.3656"))


async def test_fills_lookback_is_clamped_to_what_htx_serves(htx, server):
    server.route("GET", "/v5/trade/order/details", ok([]))
    await htx.fetch_fills([BTC], 0)
    assert only(server, "GET", "/v5/trade/order/details").query["start_time"] == str(NOW_MS - 47 * 3_600_000)


async def test_funding_batched_with_per_symbol_fallback(htx, server):
    xrp_row = {"contract_code": "XRP-USDT", "funding_rate": "0.0001", "funding_time": "1781251200000", "next_funding_time": "1781280000000"}
    server.route("GET", "/v5/market/funding_rate", lambda r: ok([xrp_row]) if r.query.get("contract_code") == "XRP-USDT" else fx("funding_rate_all.json"))
    rates = await htx.fetch_funding_rates([BTC, ETH, XRP])
    queries = [r.query for r in server.calls("GET", "/v5/market/funding_rate")]
    assert queries == [{}, {"contract_code": "XRP-USDT"}]
    assert rates[BTC].rate == Decimal("0.000083024939363172")
    assert rates[ETH].rate == Decimal("-0.000012")
    assert (rates[XRP].rate, rates[XRP].funding_time_ms, rates[XRP].interval) == (Decimal("0.0001"), 1781251200000, "8h")


async def test_leverage_read(htx, server):
    server.route("GET", "/v5/position/lever", ok([{"contract_code": "BTC-USDT", "margin_mode": "cross", "lever_rate": 10}]))
    assert await htx.fetch_leverage(BTC) == Decimal(10)
    request = only(server, "GET", "/v5/position/lever")
    assert (request.query["contract_code"], request.query["margin_mode"]) == ("BTC-USDT", "cross")


async def test_book_tops_in_one_public_read(htx, server):
    server.route("GET", "/linear-swap-ex/market/detail/batch_merged", fx("batch_merged.json"))
    tops = await htx.fetch_order_book_top([BTC, XRP])
    request = only(server, "GET", "/linear-swap-ex/market/detail/batch_merged")
    assert request.query == {"business_type": "swap"}  # public: unsigned
    btc = tops[BTC]
    assert (btc.bid, btc.ask, btc.bid_size, btc.ask_size) == (Decimal("63170.0"), Decimal("63170.1"), Decimal("0.085"), Decimal("0.120"))
    assert tops[XRP].bid_size == Decimal("4100")  # 410 contracts x 10 XRP
    assert btc.received_ms == NOW_MS and btc.venue_ts_ms == 1781254404101 and btc.valid


# --------------------------------------------------------------------------- cancel and amend


async def test_cancel_normal_and_stop_orders(htx, server):
    server.route("GET", "/v5/trade/order/opens", fx("order_opens.json"))
    server.route("GET", "/v5/algo/order/opens", lambda r: fx("algo_order_opens_sl.json") if r.query["type"] == "sl" else ok([]))
    orders = {o.id: o for o in await htx.fetch_open_orders()}
    server.requests.clear()
    limit_row = dict(fx("order_opens.json")["data"][1], state="canceled")
    stop_row = dict(fx("algo_order_opens_sl.json")["data"][0], state="canceled")
    server.route("POST", "/v5/trade/cancel_order", ok({"order_id": "1512509978516443200", "client_order_id": "77"}))
    server.route("GET", "/v5/trade/order", ok(limit_row))
    server.route("POST", "/v5/algo/cancel_orders", ok([{"algo_id": "1512871666507657216", "code": 200, "message": "Success"}]))
    server.route("GET", "/v5/algo/order", ok([stop_row]))

    canceled = await htx.cancel_order(orders["1512509978516443200"])
    assert only(server, "POST", "/v5/trade/cancel_order").body == {"order_id": "1512509978516443200", "contract_code": "BTC-USDT"}
    assert only(server, "GET", "/v5/trade/order").query["order_id"] == "1512509978516443200"
    assert canceled.status == "canceled"

    stop = await htx.cancel_order(orders["1512871666507657216"])
    assert only(server, "POST", "/v5/algo/cancel_orders").body == [{"contract_code": "BTC-USDT", "algo_id": "1512871666507657216"}]
    lookup = only(server, "GET", "/v5/algo/order").query
    assert (lookup["algo_id"], lookup["type"]) == ("1512871666507657216", "sl")
    assert stop.status == "canceled" and stop.kind == "stop_loss"


async def test_amend_replaces_only_the_unfilled_rest(htx, server):
    server.route("GET", "/v5/trade/order/opens", fx("order_opens.json"))
    server.route("GET", "/v5/algo/order/opens", ok([]))
    entry = next(o for o in await htx.fetch_open_orders() if o.post_only)  # 6 contracts, 2 filled
    server.requests.clear()
    server.route("POST", "/v5/trade/cancel_order", ok({"order_id": entry.id, "client_order_id": "4503599627370497"}))
    server.route("GET", "/v5/trade/order", ok(dict(fx("order_opens.json")["data"][0], state="partially_canceled")))
    server.route("POST", "/v5/trade/order", ok({"order_id": "905", "client_order_id": "31"}))
    new = await htx.amend_order(entry, new_client_order_id=31, price=Decimal("61500.07"))
    calls = [(r.method, r.path) for r in server.requests]
    assert calls == [("POST", "/v5/trade/cancel_order"), ("GET", "/v5/trade/order"), ("POST", "/v5/trade/order")]
    body = server.calls("POST", "/v5/trade/order")[0].body
    assert (body["volume"], body["price"], body["type"], body["client_order_id"]) == ("4", "61500", "post_only", 31)
    assert new is not None and new.amount == Decimal(4)


# --------------------------------------------------------------------------- errors and retries


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (err(1048, "Insufficient close amount available."), E.ReduceOnlyFrozen),
        (err(1047, "Insufficient margin available."), E.InsufficientMargin),
        ({"status": "error", "err_code": 1047, "err_msg": "Insufficient margin available.", "ts": NOW_MS}, E.InsufficientMargin),
        (err(1099, "A code ccxt does not know"), E.ExchangeError),
        (err(1234, "Post-only order would be matched immediately"), E.PostOnlyWouldCross),
        (err(1041, "The order amount exceeds the limit (170000Cont), please modify and order again."), E.InvalidOrder),
    ],
)
async def test_rejections_are_typed_and_never_retried(htx, server, reply, error):
    server.route("POST", "/v5/trade/order", reply)
    with pytest.raises(error) as caught:
        await htx.place_reduce_only_limit(BTC, "long", Decimal("1"), Decimal("64000"), 41)
    assert not isinstance(caught.value, E.TransientError)
    assert type(caught.value) is error
    assert len(server.calls("POST", "/v5/trade/order")) == 1
    assert server.calls("GET", "/v5/trade/order") == []  # a definite answer needs no lookup


async def test_price_band_rejection_carries_the_band(htx, server):
    server.route("POST", "/v5/trade/order", err(1039, "Buy price must be lower than 39270.9USDT. Sell price must exceed 37731USDT."))
    with pytest.raises(E.PriceOutOfBand) as caught:
        await htx.place_post_only(BTC, "buy", Decimal("1"), Decimal("40000"), 42)
    assert (caught.value.max_buy_price, caught.value.min_sell_price, caught.value.code) == (Decimal("39270.9"), Decimal("37731"), "1039")


async def test_auth_error_is_not_retried(htx, server):
    server.route("GET", "/v5/account/balance", {"status": "error", "err_code": 403, "err_msg": "Incorrect Access key [Access key错误]", "ts": NOW_MS})
    with pytest.raises(E.AuthError):
        await htx.fetch_balance()
    assert len(server.calls("GET", "/v5/account/balance")) == 1


async def test_transient_read_errors_are_retried(htx, server):
    server.route(
        "GET",
        "/v5/account/balance",
        Reply(status=429, json={"status": "error", "err_msg": "too many requests"}),
        Reply(status=502, text="<html>bad gateway</html>"),
        fx("account_balance.json"),
    )
    balance = await htx.fetch_balance()
    assert balance.equity == Decimal("1012.5")
    assert len(server.calls("GET", "/v5/account/balance")) == 3


async def test_transient_errors_give_up_after_the_attempt_budget(htx, server):
    server.route("GET", "/v5/trade/position/opens", Reply(status=503, text="down"))
    with pytest.raises(E.NetworkError):
        await htx.fetch_positions()
    assert len(server.calls("GET", "/v5/trade/position/opens")) == 3


async def test_lost_reply_is_reconciled_by_client_id_without_a_second_order(server):
    exchange = make(server, timeout_ms=250)
    await exchange.load_markets()
    cid = client_order_id("long", BTC, "entry", "pos7:0")
    placed: list[dict] = []

    def place(request):
        placed.append(request.body)
        return Reply(json=ok({"order_id": "777", "client_order_id": str(cid)}), delay=0.6)  # reply arrives too late

    def lookup(request):
        if not placed:
            return ok(None)
        row = dict(fx("order_opens.json")["data"][0], id="777", order_id="777", client_order_id=str(cid), trade_volume="0", state="new")
        return ok(row)

    server.route("POST", "/v5/trade/order", place)
    server.route("GET", "/v5/trade/order", lookup)
    try:
        order = await exchange.place_post_only(BTC, "buy", Decimal("6"), Decimal("62000.1"), cid)
        again = await exchange.place_post_only(BTC, "buy", Decimal("6"), Decimal("62000.1"), cid)
    finally:
        await exchange.close()
    assert len(server.calls("POST", "/v5/trade/order")) == 1
    query = server.calls("GET", "/v5/trade/order")[0].query
    assert (query["client_order_id"], query["contract_code"], query["margin_mode"]) == (str(cid), "BTC-USDT", "cross")
    assert (order.id, order.client_order_id, order.status) == ("777", cid, "open")
    assert again == order  # same intent in the same process: no request at all


async def test_failed_send_is_resent_with_the_same_client_id_after_a_negative_lookup(htx, server):
    server.route("POST", "/v5/trade/order", Reply(status=502, text="bad gateway"), ok({"order_id": "778", "client_order_id": "43"}))
    server.route("GET", "/v5/trade/order", ok(None))
    # not found by client id: the open orders and the fills since the send are read too
    server.route("GET", "/v5/trade/order/opens", ok([]))
    server.route("GET", "/v5/trade/order/details", ok([]))
    order = await htx.place_reduce_only_limit(BTC, "long", Decimal("2"), Decimal("65000"), 43)
    posts = server.calls("POST", "/v5/trade/order")
    assert [p.body["client_order_id"] for p in posts] == [43, 43]
    assert len(server.calls("GET", "/v5/trade/order")) == 1
    assert order.id == "778"


async def test_lost_stop_reply_is_looked_up_on_the_algo_endpoint(server):
    exchange = make(server, timeout_ms=250)
    await exchange.load_markets()
    stop_row = dict(fx("algo_order_opens_sl.json")["data"][0], algo_client_order_id="44")
    server.route("POST", "/v5/algo/order", Reply(json=ok([{"algo_id": "1512871666507657216", "algo_client_order_id": "44"}]), delay=0.6))
    server.route("GET", "/v5/algo/order", ok([stop_row]))
    try:
        stop = await exchange.place_stop_loss(BTC, "long", Decimal("12"), Decimal("61900.3"), 44)
    finally:
        await exchange.close()
    assert len(server.calls("POST", "/v5/algo/order")) == 1
    query = server.calls("GET", "/v5/algo/order")[0].query
    assert (query["algo_client_order_id"], query["type"]) == ("44", "sl")
    assert (stop.id, stop.kind, stop.client_order_id) == ("1512871666507657216", "stop_loss", 44)


async def test_unsettled_outcome_is_reported_not_guessed(server):
    exchange = make(server, timeout_ms=200, attempts=2)
    await exchange.load_markets()
    server.route("POST", "/v5/trade/order", Reply(json=ok({"order_id": "1"}), delay=0.5))
    server.route("GET", "/v5/trade/order", Reply(status=503, text="down"))
    try:
        with pytest.raises(E.OrderStateUnknown) as caught:
            await exchange.place_post_only(BTC, "buy", Decimal("1"), Decimal("60000"), 45)
    finally:
        await exchange.close()
    assert caught.value.client_order_id == 45
    assert len(server.calls("POST", "/v5/trade/order")) == 1  # never resent blind


async def test_errors_and_logs_never_contain_credentials(server, caplog):
    caplog.set_level(logging.DEBUG)
    exchange = make(server, timeout_ms=150, attempts=1)
    await exchange.load_markets()
    server.route("GET", "/v5/account/balance", Reply(json={}, delay=0.5))
    try:
        with pytest.raises(E.ExchangeTimeout) as caught:
            await exchange.fetch_balance()
    finally:
        await exchange.close()
    error = caught.value
    text = f"{error} {error!r} {error.message}"
    assert "/v5/account/balance" in text  # still useful...
    for secret in (API_KEY, SECRET, "Signature=", "AccessKeyId="):
        assert secret not in text  # ...but redacted
    assert error.__cause__ is None and error.__context__ is None
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert API_KEY not in logged and "Signature=" not in logged
    assert any("/v5/account/balance" in record.getMessage() for record in caplog.records)  # ccxt did log


async def test_concurrent_placements_of_one_intent_send_one_request(htx, server):
    server.route("POST", "/v5/trade/order", Reply(json=ok({"order_id": "990", "client_order_id": "46"}), delay=0.05))
    results = await asyncio.gather(
        *(htx.place_post_only(BTC, "buy", Decimal("1"), Decimal("60000"), 46) for _ in range(3))
    )
    assert len(server.calls("POST", "/v5/trade/order")) == 1
    assert {o.id for o in results} == {"990"}


def test_ccxt_version_is_the_one_these_requests_were_verified_against():
    import ccxt

    assert ccxt.__version__ == "4.5.90"
    assert issubclass(type(make.__globals__["HtxExchange"](HtxConfig("k" * 8, "s" * 8))._ccxt), ccxt_async.htx)


async def test_item_level_errors_inside_a_200_reply_are_not_successes(htx, server):
    server.route("POST", "/v5/algo/order", ok([{"algo_id": None, "algo_client_order_id": "47", "code": 1048, "message": "Insufficient close amount available."}]))
    with pytest.raises(E.ReduceOnlyFrozen):
        await htx.place_stop_loss(BTC, "long", Decimal("12"), Decimal("61000"), 47)
    assert len(server.calls("POST", "/v5/algo/order")) == 1 and server.calls("GET", "/v5/algo/order") == []

    server.route("GET", "/v5/algo/order/opens", lambda r: fx("algo_order_opens_sl.json") if r.query["type"] == "sl" else ok([]))
    server.route("GET", "/v5/trade/order/opens", ok([]))
    (stop,) = await htx.fetch_open_orders()
    server.route("POST", "/v5/algo/cancel_orders", ok([{"algo_id": stop.id, "code": 1099, "message": "cannot cancel now"}]))
    with pytest.raises(E.ExchangeError, match="cannot cancel now"):
        await htx.cancel_order(stop)
    gone_row = dict(fx("algo_order_opens_sl.json")["data"][0], state="triggered")
    server.route("POST", "/v5/algo/cancel_orders", ok([{"algo_id": stop.id, "code": 1061, "message": "The order does not exist."}]))
    server.route("GET", "/v5/algo/order", ok([gone_row]))
    assert (await htx.cancel_order(stop)).status == "filled"  # it had fired: not an error


async def test_amend_waits_when_the_cancel_has_not_landed(htx, server):
    server.route("GET", "/v5/trade/order/opens", fx("order_opens.json"))
    server.route("GET", "/v5/algo/order/opens", ok([]))
    entry = next(o for o in await htx.fetch_open_orders() if o.post_only)
    server.route("POST", "/v5/trade/cancel_order", ok({"order_id": entry.id, "client_order_id": "1"}))
    server.route("GET", "/v5/trade/order", ok(fx("order_opens.json")["data"][0]))  # still partially_filled
    server.requests.clear()
    with pytest.raises(E.CancelNotConfirmed):
        await htx.amend_order(entry, new_client_order_id=32, price=Decimal("61000"))
    assert server.calls("POST", "/v5/trade/order") == []  # no second live order
