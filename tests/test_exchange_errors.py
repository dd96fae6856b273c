"""Error mapping (ccxt exceptions and HTX bodies -> typed errors), redaction, retry helpers."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import ccxt
import pytest

from engine.exchange import errors as E
from engine.exchange.ccxt_errors import map_ccxt_error
from engine.exchange.retry import RetryPolicy, place_idempotent, retry_read
from engine.exchange.types import Order

SIGNED_URL = (
    "https://api.hbdm.vn/v5/trade/order?AccessKeyId=AK-live-0001&SignatureMethod=HmacSHA256"
    "&SignatureVersion=2&Timestamp=2026-01-01T00%3A00%3A00&Signature=abc%2Fdef%3D"
)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ccxt.InsufficientFunds('htx {"code":1048,"message":"Insufficient close amount available.","data":null}'), E.ReduceOnlyFrozen),
        (ccxt.InsufficientFunds('htx {"status":"error","err_code":1047,"err_msg":"Insufficient margin available."}'), E.InsufficientMargin),
        (ccxt.InvalidOrder('htx {"status":"error","err_code":1050,"err_msg":"Customer\'s order number is repeated."}'), E.DuplicateClientOrderId),
        (ccxt.OrderNotFound('htx {"status":"error","err_code":1017,"err_msg":"Order doesnt exist."}'), E.OrderNotFound),
        (ccxt.ExchangeError('htx {"code":1032,"message":"The number of access exceeded the limit."}'), E.RateLimited),
        (ccxt.ExchangeError('htx {"code":4999,"message":"post_only order would take liquidity"}'), E.PostOnlyWouldCross),
        (ccxt.ExchangeError('htx {"code":4998,"message":"something new"}'), E.ExchangeError),
        (ccxt.RateLimitExceeded("htx GET " + SIGNED_URL + " 429 Too Many Requests"), E.RateLimited),
        (ccxt.DDoSProtection("htx 418"), E.RateLimited),
        (ccxt.RequestTimeout("htx GET " + SIGNED_URL), E.ExchangeTimeout),
        (ccxt.ExchangeNotAvailable("htx GET " + SIGNED_URL + " 502 Bad Gateway <html>"), E.NetworkError),
        (ccxt.OnMaintenance('htx {"status":"error","err-code":"system-maintenance","err-msg":"System is in maintenance!"}'), E.NetworkError),
        (ccxt.BadResponse("htx garbled"), E.NetworkError),
        (ccxt.AuthenticationError('htx {"status":"error","err_code":403,"err_msg":"Incorrect Access key"}'), E.AuthError),
        (ccxt.PermissionDenied("htx API key has no permission"), E.AuthError),
        (ccxt.BadSymbol('htx {"status":"error","err_code":1013,"err_msg":"This contract symbol doesnt exist."}'), E.InvalidOrder),
        (asyncio.TimeoutError(), E.ExchangeTimeout),
        (ConnectionResetError("reset"), E.NetworkError),
    ],
)
def test_mapping(exc, expected):
    mapped = map_ccxt_error(exc, "htx")
    assert type(mapped) is expected
    assert mapped.venue == "htx"


def test_venue_code_wins_over_the_ccxt_class():
    # ccxt calls 1048 InsufficientFunds; to the engine it means "wait, do not resend"
    mapped = map_ccxt_error(ccxt.InsufficientFunds('htx {"code":1048,"message":"Insufficient close amount available."}'), "htx")
    assert isinstance(mapped, E.ReduceOnlyFrozen) and mapped.code == "1048"
    assert not isinstance(mapped, E.TransientError)


def test_an_amount_limit_message_is_not_mistaken_for_a_rate_limit():
    body = 'htx {"code":1041,"message":"The order amount exceeds the limit (170000Cont), please modify and order again."}'
    assert type(map_ccxt_error(ccxt.InvalidOrder(body), "htx")) is E.InvalidOrder


def test_price_band_bounds_are_parsed():
    body = 'htx {"status":"error","err_code":1039,"err_msg":"Buy price must be lower than 39270.9USDT. Sell price must exceed 37731USDT."}'
    mapped = map_ccxt_error(ccxt.InvalidOrder(body), "htx")
    assert isinstance(mapped, E.PriceOutOfBand)
    assert (mapped.max_buy_price, mapped.min_sell_price) == (Decimal("39270.9"), Decimal("37731"))


def test_signed_urls_and_registered_secrets_are_redacted():
    E.register_secret("super-secret-value-123")
    mapped = map_ccxt_error(ccxt.RequestTimeout("htx POST " + SIGNED_URL + " secret=super-secret-value-123"), "htx")
    text = str(mapped)
    assert "AK-live-0001" not in text and "abc%2Fdef" not in text and "super-secret-value-123" not in text
    assert "https://api.hbdm.vn/v5/trade/order?<redacted>" in text
    assert E.redact('{"apiKey": "k-123456", "x": 1}') == '{"apiKey": "<redacted>", "x": 1}'
    assert E.redact("plain text 123") == "plain text 123"


def test_redacting_filter_cleans_formatted_records():
    record = logging.LogRecord("ccxt", logging.DEBUG, __file__, 1, "%s %s", ("GET", SIGNED_URL), None)
    E.RedactingFilter().filter(record)
    assert "AccessKeyId" not in record.getMessage() and "<redacted>" in record.getMessage()


# --------------------------------------------------------------------------- retry helpers


class Clock:
    def __init__(self):
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def make_policy(attempts=4, clock=None):
    clock = clock or Clock()
    return RetryPolicy(max_attempts=attempts, base_delay=0.1, max_delay=1, rate_limit_delay=2, reconcile_delay=0.5, seed=3, sleep=clock.sleep), clock


def order(cid=7) -> Order:
    return Order("o1", cid, "BTC/USDT:USDT", "buy", "limit", Decimal(1), None, Decimal(1), Decimal(0), "open", False, True)


async def test_backoff_is_bounded_jittered_and_longer_after_rate_limits():
    policy, clock = make_policy(attempts=4)
    calls = 0

    async def flaky():
        nonlocal calls
        calls += 1
        if calls < 4:
            raise E.RateLimited("slow down") if calls == 2 else E.NetworkError("down")
        return "ok"

    assert await retry_read(flaky, policy) == "ok"
    assert calls == 4 and len(clock.sleeps) == 3
    assert clock.sleeps[1] >= 2  # rate-limit floor
    assert 0 <= clock.sleeps[0] <= 0.1 and 0 <= clock.sleeps[2] <= 0.4


async def test_rejections_are_not_retried():
    policy, clock = make_policy()
    calls = 0

    async def rejected():
        nonlocal calls
        calls += 1
        raise E.InsufficientMargin("no")

    with pytest.raises(E.InsufficientMargin):
        await retry_read(rejected, policy)
    assert calls == 1 and clock.sleeps == []


async def test_place_idempotent_looks_up_before_resending():
    policy, clock = make_policy()
    events: list[str] = []
    placed: dict[int, Order] = {}

    async def create():
        events.append("create")
        placed[7] = order()
        raise E.ExchangeTimeout("reply lost")  # the order exists, the caller does not know

    async def lookup():
        events.append("lookup")
        return placed.get(7)

    result = await place_idempotent(create, lookup, policy, client_order_id=7)
    assert result == order() and events == ["create", "lookup"]
    assert clock.sleeps[-1] == 0.5  # reconcile delay before the lookup


async def test_place_idempotent_resends_only_after_a_definite_not_found():
    policy, _ = make_policy()
    events: list[str] = []

    async def create():
        events.append("create")
        if events.count("create") == 1:
            raise E.NetworkError("connection reset before the request was read")
        return order()

    async def lookup():
        events.append("lookup")
        return None

    assert await place_idempotent(create, lookup, policy, client_order_id=7) == order()
    assert events == ["create", "lookup", "create"]


async def test_place_idempotent_does_not_look_up_after_a_rate_limit():
    policy, _ = make_policy()
    events: list[str] = []

    async def create():
        events.append("create")
        if len(events) == 1:
            raise E.RateLimited("429: not processed")
        return order()

    async def lookup():  # pragma: no cover - must not be called
        events.append("lookup")
        return None

    await place_idempotent(create, lookup, policy, client_order_id=7)
    assert events == ["create", "create"]


async def test_place_idempotent_never_sends_twice_while_the_state_is_unknown():
    policy, _ = make_policy(attempts=3)
    creates = 0

    async def create():
        nonlocal creates
        creates += 1
        raise E.ExchangeTimeout("no reply")

    async def lookup():
        raise E.NetworkError("lookup failing too")

    with pytest.raises(E.OrderStateUnknown) as caught:
        await place_idempotent(create, lookup, policy, client_order_id=99)
    assert creates == 1 and caught.value.client_order_id == 99


async def test_duplicate_client_id_returns_the_existing_order():
    policy, _ = make_policy()

    async def create():
        raise E.DuplicateClientOrderId("repeated")

    async def lookup():
        return order(cid=5)

    assert (await place_idempotent(create, lookup, policy, client_order_id=5)).client_order_id == 5


def test_config_repr_never_shows_credentials():
    from engine.exchange.htx import HtxConfig

    text = repr(HtxConfig(api_key="AK-repr-key-123", secret="SK-repr-secret-456"))
    assert "AK-repr-key-123" not in text and "SK-repr-secret-456" not in text
