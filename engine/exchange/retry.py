"""Bounded retries for transient failures, and idempotent order creation.

Only `TransientError` is retried. Reads are simply repeated. Creations are different: a timeout
or a dropped connection after sending leaves the order's existence unknown, so before sending
again we look the order up by its client id, and only a definite "not there" allows a resend
(still with the same client id, so a venue that enforces unique client ids refuses a duplicate).
If the state cannot be settled within the attempt budget, `OrderStateUnknown` tells the caller
to keep the intent pending and reconcile later with the same id.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from .errors import (
    DuplicateClientOrderId,
    InvalidOrder,
    OrderStateUnknown,
    RateLimited,
    TransientError,
)
from .types import Order

T = TypeVar("T")
log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter, bounded attempts.

    `reconcile_delay` is waited before looking up an order whose creation outcome is unknown:
    the venue may still be processing the request that timed out.
    """

    max_attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 5.0
    rate_limit_delay: float = 1.0  # floor of the wait after a rate-limit error
    reconcile_delay: float = 0.5
    seed: int | None = None
    sleep: Sleep = field(default=asyncio.sleep, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self._rng = random.Random(self.seed)

    def delay(self, attempt: int, error: BaseException | None = None) -> float:
        """Full-jitter delay for the wait after failed attempt number `attempt` (0-based)."""
        cap = min(self.max_delay, self.base_delay * (2**attempt))
        wait = self._rng.uniform(0, cap)
        if isinstance(error, RateLimited):
            wait = max(wait, self.rate_limit_delay)
        return wait

    async def backoff(self, attempt: int, error: BaseException | None = None) -> None:
        await self.sleep(self.delay(attempt, error))


NO_RETRY = RetryPolicy(max_attempts=1)


async def retry_read(call: Callable[[], Awaitable[T]], policy: RetryPolicy, *, what: str = "read") -> T:
    """Run `call`, repeating it on `TransientError` up to the policy's attempt budget."""
    for attempt in range(policy.max_attempts):
        try:
            return await call()
        except TransientError as exc:
            if attempt + 1 >= policy.max_attempts:
                raise
            log.warning("%s failed (%s), retry %d/%d", what, exc, attempt + 1, policy.max_attempts - 1)
            await policy.backoff(attempt, exc)
    raise AssertionError("unreachable")  # pragma: no cover


async def place_idempotent(
    create: Callable[[], Awaitable[Order]],
    lookup: Callable[[], Awaitable[Order | None]],
    policy: RetryPolicy,
    *,
    client_order_id: int,
    what: str = "create order",
) -> Order:
    """Create an order at most once per client id, across retries and lost replies.

    `create` sends the order (one attempt), `lookup` returns the venue's order for the same
    client id or None when the venue definitely does not know it.
    """
    ambiguous = False
    last_error: TransientError | None = None
    for attempt in range(policy.max_attempts):
        if ambiguous:
            await policy.sleep(policy.reconcile_delay)
            try:
                found = await lookup()
            except TransientError as exc:
                last_error = exc
                log.warning("%s: lookup of client id %s failed (%s)", what, client_order_id, exc)
                await policy.backoff(attempt, exc)
                continue  # still unknown: never send again without a definite answer
            if found is not None:
                log.info("%s: client id %s already exists as %s", what, client_order_id, found.id)
                return found
        try:
            return await create()
        except DuplicateClientOrderId as exc:
            found = await retry_read(lookup, policy, what=f"{what} lookup")
            if found is not None:
                return found
            raise InvalidOrder(
                f"client order id {client_order_id} is reported as used but cannot be found: {exc.message}",
                venue=exc.venue,
                code=exc.code,
            ) from None
        except TransientError as exc:
            last_error = exc
            ambiguous = ambiguous or exc.may_have_executed
            log.warning("%s failed (%s), attempt %d/%d", what, exc, attempt + 1, policy.max_attempts)
            if attempt + 1 < policy.max_attempts:
                await policy.backoff(attempt, exc)
    if ambiguous:
        # one last look: the budget is spent, but an answer is still worth more than a guess
        try:
            found = await lookup()
        except TransientError:
            found = None
        else:
            if found is not None:
                return found
            # definitely absent: safe for the caller to retry later with the same id
            assert last_error is not None
            raise last_error
        raise OrderStateUnknown(
            f"{what}: outcome of client id {client_order_id} unknown after {policy.max_attempts} attempts"
            + (f" (last error: {last_error.message})" if last_error else ""),
            client_order_id=client_order_id,
            venue=last_error.venue if last_error else None,
        )
    assert last_error is not None
    raise last_error
