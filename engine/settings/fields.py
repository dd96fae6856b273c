"""Field helpers and value types shared by every settings group.

Each setting is declared once, with `setting(...)`: its default, bounds, unit, group and
one-line description live in the pydantic field, and everything else (.env loading, the
example file, the docs, the in-app editor) reads them from there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr
from pydantic.fields import FieldInfo

Scope = Literal["side", "global"]

GROUP_TITLES: dict[str, str] = {
    "profiles": "Profiles and coins",
    "secrets": "API keys (secrets)",
    "exchange": "Exchange connection",
    "signal": "Signal: EMA map, relative strength, market structure",
    "entry": "Entry gates and ladders",
    "sizing": "Sizing, margin caps and cooldowns",
    "fees": "Fees",
    "averaging": "Averaging",
    "exits": "Exits: hard stop, exit ladder, runner, breakeven, time exits",
    "account": "Account-PnL guard",
    "protections": "Account protections: drawdown lock, daily-loss halt, stop-loss streak",
    "volatility": "Volatility and BTC-risk scaling",
    "macro": "Macro regime overlay (gold/BTC RSI)",
    "reference": "Cross-exchange reference price (MEXC by default)",
    "hedge": "BTC hedge",
    "monitoring": "Monitoring, logs and audit files",
    "runtime": "Runtime",
}


def _split_list(value: Any) -> Any:
    """Accept '0.5,0.5', '(0.5, 0.5)', '[0.5]', '(1.0,)' or a real sequence."""
    if isinstance(value, str):
        s = value.strip()
        if s[:1] in "([" and s[-1:] in ")]":
            s = s[1:-1]
        parts = [p.strip().strip("'\"") for p in s.split(",")]
        if parts and parts[-1] == "":
            parts = parts[:-1]  # a trailing comma, as in '(1.0,)'
        if parts == [""]:
            return ()
        return tuple(parts)
    return value


def _none_words(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("none", "null", "-", "runner"):
        return None
    return value


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _lower_list(value: Any) -> Any:
    value = _split_list(value)
    if isinstance(value, (tuple, list)):
        return tuple(str(v).strip().lower() for v in value if str(v).strip())
    return value


def float_list(
    ge: float | None = None, le: float | None = None, gt: float | None = None,
    optional_items: bool = False,
) -> Any:
    """Comma-separated numbers, e.g. `0.5,0.5`, each item within the bounds given.

    With `optional_items`, an item written `none` stays empty (a ladder step without a target).
    """
    item: Any = Annotated[float, Field(ge=ge, le=le, gt=gt)]
    if optional_items:
        item = Annotated[item | None, BeforeValidator(_none_words)]
    return Annotated[tuple[item, ...], BeforeValidator(_split_list)]


FloatList = float_list()
WordList = Annotated[tuple[str, ...], BeforeValidator(_lower_list)]
"""Comma-separated words, lower-cased, e.g. `btc,eth,xrp`."""
Str = Annotated[str, BeforeValidator(_strip)]

_COIN_RE = re.compile(r"[a-z0-9]+")


def _check_coins(value: tuple[str, ...]) -> tuple[str, ...]:
    for i, coin in enumerate(value, start=1):
        if not _COIN_RE.fullmatch(coin):
            raise ValueError(f"item {i} ({coin!r}) is not a coin name: letters and digits only, "
                             "the base coin without a quote (btc, not btc/usdt)")
    return value


CoinList = Annotated[tuple[str, ...], BeforeValidator(_lower_list), AfterValidator(_check_coins)]
"""Comma-separated coin names (letters and digits), lower-cased, e.g. `btc,eth,xrp`."""


def _non_empty_path(value: str) -> str:
    if not value:
        raise ValueError("a folder path is needed; remove the line to use the default")
    return value


FolderPath = Annotated[str, BeforeValidator(_strip), AfterValidator(_non_empty_path)]
"""A folder path that cannot be empty (an empty one would silently mean the working directory)."""

def _must_be_true(value: bool) -> bool:
    if value is not True:
        raise ValueError("CROT always keeps this on (it protects the account); remove the line or set true")
    return value


AlwaysOn = Annotated[bool, AfterValidator(_must_be_true)]
"""A safety switch that exists for compatibility with the reference settings but cannot be off."""

Timeframe = Literal["1m", "5m", "15m", "30m", "1h", "4h", "1d"]
TIMEFRAME_MINUTES: dict[str, int] = {
    "1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "1d": 1440,
}


def setting(
    default: Any,
    description: str,
    *,
    group: str,
    scope: Scope = "side",
    unit: str = "",
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    env: str | None = None,
    planned: bool = False,
) -> Any:
    """Declare one setting. `env` is only needed when the .env key is not the field name
    upper-cased (the reference-price group carries an EXTERNAL_PRICE_ prefix). `planned` marks
    a setting of the reference catalog whose behaviour CROT does not implement yet: it is
    accepted and validated, documented as not yet in effect, and `crot config check` warns when
    it is changed from its default."""
    if group not in GROUP_TITLES:
        raise ValueError(f"unknown settings group {group!r}")
    extra: dict[str, Any] = {"group": group, "scope": scope, "unit": unit}
    if env:
        extra["env"] = env
    if planned:
        extra["status"] = "planned"
    return Field(
        default=default,
        description=description,
        ge=ge,
        le=le,
        gt=gt,
        lt=lt,
        json_schema_extra=extra,
    )


@dataclass(frozen=True)
class SettingInfo:
    """Everything the example generator, the docs and the editor need about one setting."""

    key: str  # the .env key, e.g. HARD_STOP_LOSS_PCT
    name: str  # the model field name, e.g. hard_stop_loss_pct
    group: str
    scope: Scope
    unit: str
    description: str
    default: Any
    kind: str  # bool | int | float | str | choice | float-list | word-list | secret
    choices: tuple[str, ...]
    ge: float | None
    le: float | None
    gt: float | None
    lt: float | None
    field: FieldInfo
    planned: bool = False  # accepted but not yet in effect (see `setting`)

    @property
    def secret(self) -> bool:
        return self.kind == "secret"

    def bounds_text(self) -> str:
        lo = f">= {_num(self.ge)}" if self.ge is not None else (
            f"> {_num(self.gt)}" if self.gt is not None else "")
        hi = f"<= {_num(self.le)}" if self.le is not None else (
            f"< {_num(self.lt)}" if self.lt is not None else "")
        return " and ".join(p for p in (lo, hi) if p)

    def expected(self) -> str:
        """Human description of a valid value, used in error messages and the editor."""
        base = {
            "bool": "true or false",
            "int": "a whole number",
            "float": "a number",
            "str": "text",
            "secret": "text",
            "float-list": "comma-separated numbers (e.g. 0.5,0.5)",
            "word-list": "comma-separated words (e.g. btc,eth)",
        }.get(self.kind, "")
        if self.kind == "bool" and any(getattr(m, "func", None) is _must_be_true for m in self.field.metadata):
            base = "true (cannot be turned off)"
        if self.kind == "choice":
            base = "one of: " + ", ".join(self.choices)
        elif self.kind == "word-list" and self.choices:
            base = "comma-separated, each one of: " + ", ".join(self.choices)
        b = self.bounds_text()
        if b:
            base += (" with every item " if self.kind.endswith("list") else " ") + b
        if self.unit:
            base += f" ({self.unit})"
        return base


def _num(x: float) -> str:
    return f"{x:g}"


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _kind(annotation: Any) -> tuple[str, tuple[str, ...]]:
    ann = _unwrap(annotation)
    origin = get_origin(ann)
    if ann is bool:
        return "bool", ()
    if ann is int:
        return "int", ()
    if ann is float:
        return "float", ()
    if ann is str:
        return "str", ()
    if ann is SecretStr:
        return "secret", ()
    if origin is Literal:
        return "choice", tuple(str(a) for a in get_args(ann))
    if origin is tuple:
        inner = _unwrap(get_args(ann)[0])
        if inner is str or get_origin(inner) is Literal:
            return "word-list", tuple(str(a) for a in get_args(inner)) if get_origin(inner) is Literal else ()
        return "float-list", ()
    raise TypeError(f"unsupported settings type {annotation!r}")


def _item_metadata(annotation: Any) -> list[Any]:
    """Constraints of a list's items: tuple[Annotated[float, Field(ge=..)] | None, ...]."""
    ann = _unwrap(annotation)
    if get_origin(ann) is not tuple:
        return []
    item = get_args(ann)[0]
    found: list[Any] = []
    stack = [item]
    while stack:
        a = stack.pop()
        if get_origin(a) is Annotated:
            args = get_args(a)
            stack.append(args[0])
            for m in args[1:]:
                found.extend(getattr(m, "metadata", [m]))
        else:
            stack.extend(x for x in get_args(a) if x is not type(None))
    return found


def _constraint(field: FieldInfo, name: str) -> float | None:
    for m in list(field.metadata) + _item_metadata(field.annotation):
        v = getattr(m, name, None)
        if v is not None:
            return v
    return None


def describe_field(name: str, field: FieldInfo) -> SettingInfo:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    kind, choices = _kind(field.annotation)
    return SettingInfo(
        key=str(extra.get("env") or name.upper()),
        name=name,
        group=str(extra.get("group", "")),
        scope=extra.get("scope", "side"),  # type: ignore[arg-type]
        unit=str(extra.get("unit", "")),
        description=field.description or "",
        default=field.default,
        kind=kind,
        choices=choices,
        ge=_constraint(field, "ge"),
        le=_constraint(field, "le"),
        gt=_constraint(field, "gt"),
        lt=_constraint(field, "lt"),
        field=field,
        planned=extra.get("status") == "planned",
    )


def format_value(value: Any) -> str:
    """Render a Python value the way it is written in `.env`."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join("none" if v is None else format_value(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)

ProfileList = Annotated[tuple[Literal["long", "short"], ...], BeforeValidator(_lower_list)]
"""Which sides run, e.g. `long,short`."""
