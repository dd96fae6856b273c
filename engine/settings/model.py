"""The settings model: one profile's settings, the process-wide settings, and both together.

Every setting of a group module is a field here; `ProfileSettings` holds the per-side ones
(the long and the short profile each get their own instance, `LONG_`/`SHORT_` keys override
the shared value), `GlobalSettings` the process-wide ones (connection, runtime, secrets).
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from pydantic import ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from . import rules
from .fields import SettingInfo, describe_field
from .groups import GLOBAL_GROUPS, SIDE_GROUPS

Side = Literal["long", "short"]
SIDES: tuple[Side, ...] = ("long", "short")

_CONFIG = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, validate_default=True)


def _refuse(violations: list[rules.Violation]) -> None:
    """Raise the cross-field violations as one error the loader splits per `.env` line."""
    if violations:
        raise PydanticCustomError(
            "settings_rules",
            "{summary}",
            {"summary": "; ".join(v.message for v in violations), "violations": violations},
        )


class ProfileSettings(*SIDE_GROUPS):  # type: ignore[misc]
    """All per-side settings of one profile (long or short)."""

    model_config = _CONFIG

    @model_validator(mode="after")
    def _cross_field_rules(self) -> "ProfileSettings":
        # TIMEFRAME (the reference bot's key) sets the base timeframe EMA_TRIGGER_TIMEFRAME when
        # that is not given; EMA_TRIGGER_TIMEFRAME wins when both are (the editor, optimize trials
        # and per-side keys change that one)
        given = self.model_fields_set
        if "timeframe" in given and "ema_trigger_timeframe" not in given:
            self.__dict__["ema_trigger_timeframe"] = self.timeframe
        elif "ema_trigger_timeframe" in given and "timeframe" not in given:
            self.__dict__["timeframe"] = self.ema_trigger_timeframe
        _refuse(rules.check(self))
        return self


class GlobalSettings(*GLOBAL_GROUPS):  # type: ignore[misc]
    """Process-wide settings: exchange connection, runtime, monitoring, secrets, profiles."""

    model_config = _CONFIG

    @model_validator(mode="after")
    def _cross_field_rules(self) -> "GlobalSettings":
        _refuse(rules.check_global(self))
        return self


class Settings:
    """The loaded configuration: process-wide settings plus one ProfileSettings per side.

    Both sides are always built and validated (so a bad `SHORT_` override is caught even while
    the short profile is off); `enabled` lists the sides BOT_PROFILES switches on.
    """

    def __init__(self, glob: GlobalSettings, profiles: dict[Side, ProfileSettings],
                 source: dict[str, str] | None = None):
        self.glob = glob
        self.profiles = profiles
        self.source = dict(source or {})  # .env keys that were set, with their raw values

    @property
    def enabled(self) -> tuple[Side, ...]:
        return tuple(s for s in SIDES if s in self.glob.bot_profiles)

    def side(self, side: Side) -> ProfileSettings:
        return self.profiles[side]

    @classmethod
    def defaults(cls) -> "Settings":
        return cls(GlobalSettings(), {s: ProfileSettings() for s in SIDES})


@cache
def catalog() -> tuple[SettingInfo, ...]:
    """Every setting, global first, in declaration order: the editor, docs and example use it."""
    out = [describe_field(n, f) for n, f in GlobalSettings.model_fields.items()]
    out += [describe_field(n, f) for n, f in ProfileSettings.model_fields.items()]
    return tuple(out)


@cache
def by_key() -> dict[str, SettingInfo]:
    return {info.key: info for info in catalog()}


def value_of(settings: Settings, info: SettingInfo, side: Side = "long") -> Any:
    target = settings.glob if info.scope == "global" else settings.side(side)
    return getattr(target, info.name)
