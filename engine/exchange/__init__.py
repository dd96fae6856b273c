"""Exchange layer: one async interface (`Exchange`) with HTX, simulated and fault-injecting
implementations, the public reference feeds (MEXC, any ccxt venue), typed errors and safe rounding.

Modules: `types` (values), `errors` (typed errors, redaction), `precision` (safe rounding),
`client_ids` (deterministic ids), `base` (interface), `retry` (backoff, idempotent placement),
`htx`, `mexc`, `sim`, `faults`, `resilient`, `testing` (loopback server, network guard).
"""

from .base import Exchange, ReferenceFeed, amend_by_cancel_replace
from .client_ids import MAX_CLIENT_ORDER_ID, client_order_id
from .errors import (
    AuthError,
    CancelNotConfirmed,
    DuplicateClientOrderId,
    ExchangeError,
    ExchangeTimeout,
    InsufficientMargin,
    InvalidOrder,
    NetworkError,
    OrderNotFound,
    OrderRejected,
    OrderStateUnknown,
    PostOnlyWouldCross,
    PriceOutOfBand,
    RateLimited,
    ReduceOnlyFrozen,
    TransientError,
    redact,
)
from .faults import FaultInjectingExchange, FaultRates
from .htx import HtxConfig, HtxExchange
from .ccxt_reference import CcxtReference, ReferenceConfig
from .mexc import MexcConfig, MexcReference
from .resilient import RetryingExchange
from .retry import RetryPolicy
from .sim import SimConfig, SimulatedExchange
from .types import (
    Balance,
    BookTop,
    Fill,
    FundingRate,
    Market,
    Order,
    OrderKind,
    OrderStatus,
    Position,
    PositionSide,
    Side,
    closing_side,
)

__all__ = [
    "AuthError",
    "Balance",
    "BookTop",
    "CancelNotConfirmed",
    "DuplicateClientOrderId",
    "Exchange",
    "ExchangeError",
    "ExchangeTimeout",
    "FaultInjectingExchange",
    "FaultRates",
    "Fill",
    "FundingRate",
    "HtxConfig",
    "HtxExchange",
    "InsufficientMargin",
    "InvalidOrder",
    "MAX_CLIENT_ORDER_ID",
    "Market",
    "CcxtReference",
    "MexcConfig",
    "MexcReference",
    "ReferenceConfig",
    "NetworkError",
    "Order",
    "OrderKind",
    "OrderNotFound",
    "OrderRejected",
    "OrderStateUnknown",
    "OrderStatus",
    "Position",
    "PositionSide",
    "PostOnlyWouldCross",
    "PriceOutOfBand",
    "RateLimited",
    "ReduceOnlyFrozen",
    "ReferenceFeed",
    "RetryPolicy",
    "RetryingExchange",
    "Side",
    "SimConfig",
    "SimulatedExchange",
    "TransientError",
    "amend_by_cancel_replace",
    "client_order_id",
    "closing_side",
    "redact",
]
