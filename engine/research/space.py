"""The search-space file of `crot optimize`: which catalog settings to search, over which values.

A TOML file (an example: `crot optimize example`)::

    [study]                    # optional; the command line's flags win
    objectives = ["sharpe", "drawdown"]
    symbols = ["BTC", "ETH"]
    timerange = "20240724-20240809"
    folds = 2
    train_days = 8
    test_days = 4
    trials = 60

    [params]
    HARD_STOP_LOSS_PCT = { low = 0.01, high = 0.03, step = 0.0025 }
    LONG_ENTRY_MIN_SCORE = { low = 0.01, high = 0.04, log = true }
    SHORT_EMA_STRATEGY_ENABLED = [true, false]              # a list: the choices
    EMA_LADDER_FRACTIONS = { choices = ["1.0", "0.5,0.5"] }

Every key is a catalog key; a per-side setting may take a LONG_ or SHORT_ prefix (searched for
that side only). A range must lie within the setting's bounds and every choice must be a value
the setting accepts. Secrets and settings not yet in effect cannot be searched (the second
would change nothing). Any problem is a SpaceError: one line naming the file, the key and
what is expected.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.settings import by_key, lookup, validate_value
from engine.settings.fields import SettingInfo, format_value
from engine.settings.loader import SIDE_PREFIXES

__all__ = ["Param", "Space", "SpaceError", "STUDY_KEYS", "EXAMPLE", "load_space", "parse_space"]


class SpaceError(ValueError):
    """A search space that cannot be used; the message is one line for the user."""


#: the [study] table: defaults for the command line, by name -> the type expected
STUDY_KEYS: dict[str, str] = {
    "objectives": "a list of objective names", "symbols": "a list of symbols", "timerange": "text",
    "folds": "a whole number", "train_days": "a whole number", "test_days": "a whole number",
    "trials": "a whole number", "min_trades": "a whole number",
}
_RANGE_KEYS = {"low", "high", "step", "log"}


@dataclass(frozen=True)
class Param:
    """One searched setting: a numeric range (``low``..``high``, optional ``step`` or ``log``)
    or a list of ``choices``. ``key`` is the .env key as written (with its side prefix)."""

    key: str
    kind: str  # float | int | choice
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> str:
        """Ask an Optuna trial for a value; returns it as it is written in .env."""
        if self.kind == "int":
            v: Any = trial.suggest_int(self.key, int(self.low), int(self.high),  # type: ignore[arg-type]
                                       step=int(self.step or 1), log=self.log)
        elif self.kind == "float":
            v = trial.suggest_float(self.key, float(self.low), float(self.high),  # type: ignore[arg-type]
                                    step=self.step, log=self.log)
            v = round(v, 12)  # 0.30000000000000004 -> 0.3: the value as a user would write it
        else:
            v = trial.suggest_categorical(self.key, list(self.choices))
        return format_value(v)

    def spec(self) -> dict[str, Any]:
        """JSON-friendly description (the study's fingerprint and the report)."""
        if self.kind == "choice":
            return {"choices": list(self.choices)}
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.step is not None:
            out["step"] = self.step
        if self.log:
            out["log"] = True
        return out


@dataclass(frozen=True)
class Space:
    path: str
    params: tuple[Param, ...]
    study: dict[str, Any]  # the [study] table, checked against STUDY_KEYS

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.params)

    def spec(self) -> dict[str, Any]:
        return {p.key: p.spec() for p in self.params}


def load_space(path: str | Path) -> Space:
    p = Path(path)
    if not p.is_file():
        raise SpaceError(f"space file {p}: no such file (write one from: crot optimize example)")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpaceError(f"space file {p}: cannot read it ({exc})") from None
    return parse_space(text, str(p))


def parse_space(text: str, path: str = "space.toml") -> Space:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpaceError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - {"params", "study"})
    if unknown:
        raise SpaceError(f"{path}: unknown table or key {unknown[0]!r}; expected [params] and optionally [study]")
    study = data.get("study", {})
    if not isinstance(study, dict):
        raise SpaceError(f"{path}: 'study' must be a table ([study])")
    for k, v in study.items():
        if k not in STUDY_KEYS:
            raise SpaceError(f"{path}: [study] {k}: unknown; expected one of: {', '.join(STUDY_KEYS)}")
        want = STUDY_KEYS[k]
        least = 0 if k == "min_trades" else 1
        ok = (isinstance(v, list) and all(isinstance(x, str) for x in v) and v) if want.startswith("a list") else (
            isinstance(v, int) and not isinstance(v, bool) and v >= least) if want == "a whole number" else isinstance(v, str)
        if k == "symbols" and isinstance(v, str):
            ok = True  # "BTC,ETH" as on the command line
        if not ok:
            raise SpaceError(f"{path}: [study] {k} = {v!r}: expected {want}" + (f" (at least {least})" if "whole" in want else ""))
    params = data.get("params")
    if not isinstance(params, dict) or not params:
        raise SpaceError(f"{path}: no [params] table: name at least one setting to search, e.g. "
                         "HARD_STOP_LOSS_PCT = { low = 0.01, high = 0.03 }")
    return Space(path, tuple(_param(path, k, v) for k, v in params.items()), dict(study))


def _fail(path: str, key: str, msg: str) -> SpaceError:
    return SpaceError(f"{path}: [params] {key}: {msg}")


def _info(path: str, key: str) -> SettingInfo:
    info = lookup(key)
    if info is None:
        prefix = next((p for p in SIDE_PREFIXES if key.startswith(p)), "")
        bare = key[len(prefix):]
        if prefix and bare in by_key():
            raise _fail(path, key, f"{bare} is a process-wide setting and cannot be searched per side; use {bare}")
        hint = difflib.get_close_matches(bare, list(by_key()), n=1, cutoff=0.75)
        raise _fail(path, key, "not a setting" + (f"; did you mean {prefix}{hint[0]}?" if hint else
                                                 " (names are the .env keys, see docs/SETTINGS.md)"))
    if info.secret:
        raise _fail(path, key, "a secret cannot be searched")
    if info.planned:
        raise _fail(path, key, "not yet in effect in CROT: searching it would change nothing")
    return info


def _number(path: str, key: str, name: str, v: Any, integer: bool) -> float | int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
        raise _fail(path, key, f"{name} = {v!r}: expected {'a whole number' if integer else 'a number'}")
    if isinstance(v, float) and not math.isfinite(v):
        raise _fail(path, key, f"{name} = {v!r}: expected a finite number")
    return v


def _check_value(path: str, key: str, what: str, v: Any, info: SettingInfo) -> None:
    try:
        validate_value(key, format_value(v))
    except ValueError as exc:
        bounds = info.bounds_text()
        detail = f"outside the setting's bounds ({bounds})" if bounds and info.kind in ("float", "int") \
            and isinstance(v, (int, float)) and not isinstance(v, bool) else str(exc)
        raise _fail(path, key, f"{what} {format_value(v)} is {detail}" if detail.startswith("outside")
                    else f"{what} {format_value(v)!r}: {detail}") from None


def _param(path: str, key: str, spec: Any) -> Param:
    info = _info(path, key)
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, dict):
        raise _fail(path, key, f"{spec!r}: expected {{ low = .., high = .. }}, {{ choices = [..] }} or a list of choices")
    if "choices" in spec:
        extra = sorted(set(spec) - {"choices"})
        if extra:
            raise _fail(path, key, f"'{extra[0]}' cannot be combined with choices")
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise _fail(path, key, "choices must be a non-empty list")
        seen: list[str] = []
        for c in choices:
            if not isinstance(c, (bool, int, float, str)):
                raise _fail(path, key, f"choice {c!r}: expected a number, true/false or text")
            _check_value(path, key, "choice", c, info)
            text = format_value(c)
            if text in seen:
                raise _fail(path, key, f"choice {text} is listed twice")
            seen.append(text)
        return Param(key, "choice", choices=tuple(choices))
    extra = sorted(set(spec) - _RANGE_KEYS)
    if extra:
        raise _fail(path, key, f"unknown option '{extra[0]}'; expected low, high, step, log or choices")
    if info.kind not in ("float", "int"):
        raise _fail(path, key, f"a {info.kind} setting takes choices, not a range (expected {info.expected()})")
    if "low" not in spec or "high" not in spec:
        raise _fail(path, key, "a range needs both low and high")
    integer = info.kind == "int"
    low = _number(path, key, "low", spec["low"], integer)
    high = _number(path, key, "high", spec["high"], integer)
    if not low < high:
        raise _fail(path, key, f"low {low} must be below high {high}")
    _check_value(path, key, "low", low, info)
    _check_value(path, key, "high", high, info)
    step = spec.get("step")
    if step is not None:
        step = _number(path, key, "step", step, integer)
        if step <= 0 or step > high - low:
            raise _fail(path, key, f"step {step} must be above 0 and at most high - low ({high - low:g})")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise _fail(path, key, f"log = {log!r}: expected true or false")
    if log and step is not None:
        raise _fail(path, key, "log and step cannot be combined (a log range has no fixed step)")
    if log and low <= 0:
        raise _fail(path, key, f"a log range needs low above 0 (got {low})")
    return Param(key, info.kind, low=low, high=high, step=step, log=log)


EXAMPLE = '''\
# crot optimize: a search space (TOML). Keys are .env settings; a per-side setting may take
# LONG_ or SHORT_ to search one side only. Ranges must lie within each setting's bounds
# (see docs/SETTINGS.md); a list, or { choices = [...] }, gives discrete values.

[study]                      # optional defaults; the command line's flags win
objectives = ["sharpe", "drawdown"]   # any of: pnl, sharpe, drawdown, profit_factor
symbols = ["BTC", "ETH", "SOL"]
timerange = "20240724-20240809"       # split into walk-forward windows
folds = 2                             # train on 8 days, test on the next 4, twice
train_days = 8
test_days = 4
trials = 60

[params]
HARD_STOP_LOSS_PCT = { low = 0.01, high = 0.03, step = 0.0025 }
ENTRY_MIN_SCORE = { low = 0.01, high = 0.04, log = true }   # at most ENTRY_CROWDED_MIN_SCORE
EMA_EXIT_RUNNER_TRAILING_PULLBACK = { low = 0.005, high = 0.02 }
COOLDOWN_MINUTES_AFTER_CLOSE = { low = 0, high = 120, step = 10 }
SHORT_EMA_STRATEGY_ENABLED = [true, false]
'''
