"""Build `Settings` from a `.env` file, or explain exactly why not.

Rules that protect money: a bad value is an error naming the key, the line, the value and what
is expected (never a silent default); an unknown key is an error with a suggestion (a typo
would otherwise leave the default in force); a key set twice is an error; a global setting
cannot take a LONG_/SHORT_ prefix.
"""

from __future__ import annotations

import difflib
import os
import stat
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from .envfile import (
    Assignment, EnvSyntaxError, atomic_write_text, parse_lines, read_env_text, split_lines, update_env_text,
)
from .fields import SettingInfo
from .model import SIDES, GlobalSettings, ProfileSettings, Settings, Side, by_key
from .rules import Violation

SIDE_PREFIXES: dict[str, Side] = {"LONG_": "long", "SHORT_": "short"}


@dataclass(frozen=True)
class Problem:
    message: str
    key: str | None = None
    line: int | None = None

    def render(self, path: str | None = None) -> str:
        where = ":".join(p for p in (path or "", str(self.line) if self.line else "") if p)
        head = f"{where}: " if where else ""
        return f"{head}{self.key + ': ' if self.key else ''}{self.message}"


class SettingsError(ValueError):
    """The configuration cannot be used; `problems` lists every reason found."""

    def __init__(self, problems: list[Problem], path: str | None = None):
        self.problems = problems
        self.path = path
        lines = [p.render(path) for p in problems]
        super().__init__(f"{len(problems)} problem(s) in the settings:\n  " + "\n  ".join(lines))


@cache
def _adapter(base_key: str) -> TypeAdapter[Any]:
    field = by_key()[base_key].field
    ann: Any = field.annotation
    if field.metadata:
        ann = Annotated[(ann, *field.metadata)]  # type: ignore[valid-type]
    return TypeAdapter(ann, config=ConfigDict(allow_inf_nan=False))


def _short_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    msg = str(err["msg"]).removeprefix("Value error, ")
    loc = [p for p in err.get("loc", ()) if isinstance(p, int)]
    if loc:
        msg = f"item {loc[0] + 1}: {msg}"
    return msg


def validate_value(key: str, raw: str) -> Any:
    """Parse one raw `.env` value for `key` (with or without a side prefix).

    Returns the typed value or raises ValueError with a message fit for the user; the settings
    editor uses this for inline validation.
    """
    info = lookup(key)
    if info is None:
        raise ValueError(f"unknown setting {key}")
    raw = raw.strip()
    bad = _hidden_character(raw)
    if bad:
        raise ValueError(f"{bad}; values are one line of plain text: retype it without that character")
    if raw == "" and info.kind not in ("str", "secret", "word-list", "float-list"):
        raise ValueError(f"empty value; expected {info.expected()} "
                         f"(remove the line to use the default {info.default!r})")
    try:
        return _adapter(info.key).validate_python(raw)
    except ValidationError as exc:
        raise ValueError(f"{raw!r} is not valid ({_short_error(exc)}); expected {info.expected()}") from None


_CHAR_NAMES = {"\x00": "NUL", "\t": "tab", "\x0b": "vertical tab", "\x0c": "form feed", "\r": "carriage return",
               "\x1b": "escape", "\x85": "next line", "\u2028": "line separator", "\u2029": "paragraph separator",
               "\u200b": "zero-width space", "\ufeff": "byte-order mark"}


def _hidden_character(raw: str) -> str:
    """Describe the first control, format or line-separator character in a value (none: '').

    Such characters are invisible in an editor, cut values in two for other tools, and in an
    API key or a coin list are always a copy-paste accident."""
    for i, ch in enumerate(raw, start=1):
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            name = _CHAR_NAMES.get(ch) or unicodedata.name(ch, "control character").lower()
            return f"contains an invisible character (U+{ord(ch):04X} {name}) at position {i}"
    return ""


def lookup(key: str) -> SettingInfo | None:
    """The setting a key refers to, accepting LONG_/SHORT_ prefixes on per-side settings."""
    table = by_key()
    if key in table:
        return table[key]
    for prefix in SIDE_PREFIXES:
        if key.startswith(prefix):
            info = table.get(key[len(prefix):])
            if info is not None and info.scope == "side":
                return info
    return None


def _suggest(key: str) -> str:
    table = by_key()
    prefix = next((p for p in SIDE_PREFIXES if key.startswith(p)), "")
    bare = key[len(prefix):]
    match = difflib.get_close_matches(bare, list(table), n=1, cutoff=0.75)
    if match:
        return f"; did you mean {prefix}{match[0]}?"
    return ""


def _rule_problems(exc: ValidationError, lines: dict[str, Assignment], key_for: dict[str, str],
                   side: str | None) -> list[Problem]:
    out: list[Problem] = []
    for err in exc.errors(include_url=False):
        violations: list[Violation] = list((err.get("ctx") or {}).get("violations", []))
        if not violations:  # not a cross-field rule: report as pydantic says
            name = str(err["loc"][0]) if err.get("loc") else None
            key = key_for.get(name, name.upper() if name else None) if name else None
            a = lines.get(key) if key else None
            out.append(Problem(err["msg"], key, a.line_no if a else None))
            continue
        for v in violations:
            keys = [key_for.get(f, f.upper()) for f in v.fields]
            set_lines = sorted(lines[k].line_no for k in keys if k in lines)
            sided = side and any(k.startswith(tuple(SIDE_PREFIXES)) for k in keys)
            where = f" [{side} profile]" if sided else ""
            shown = ", ".join(keys)
            msg = f"{v.message}{where}"
            out.append(Problem(msg, shown, set_lines[0] if set_lines else None))
    return out


def settings_from_assignments(assignments: list[Assignment], path: str | None = None) -> Settings:
    problems: list[Problem] = []
    first: dict[str, Assignment] = {}
    for a in assignments:
        if a.key in first:
            problems.append(Problem(f"set twice (lines {first[a.key].line_no} and {a.line_no}); "
                                    "keep one", a.key, a.line_no))
        else:
            first[a.key] = a

    table = by_key()
    glob_values: dict[str, Any] = {}
    shared: dict[str, Any] = {}
    per_side: dict[Side, dict[str, Any]] = {s: {} for s in SIDES}
    keys_for_side: dict[Side, dict[str, str]] = {s: {} for s in SIDES}
    for key, a in first.items():
        info = table.get(key)
        side: Side | None = None
        if info is None:
            for prefix, s in SIDE_PREFIXES.items():
                if key.startswith(prefix) and key[len(prefix):] in table:
                    info, side = table[key[len(prefix):]], s
                    break
        if info is None:
            problems.append(Problem(f"unknown setting{_suggest(key)}", key, a.line_no))
            continue
        if side is not None and info.scope == "global":
            problems.append(Problem(f"{info.key} is a process-wide setting and cannot be set per "
                                    f"side; use {info.key}", key, a.line_no))
            continue
        try:
            value = validate_value(key, a.value)
        except ValueError as exc:
            problems.append(Problem(str(exc), key, a.line_no))
            continue
        if info.scope == "global":
            glob_values[info.name] = value
        elif side is None:
            shared[info.name] = value
        else:
            per_side[side][info.name] = value
            keys_for_side[side][info.name] = key
    if problems:
        raise SettingsError(problems, path)

    try:
        glob = GlobalSettings(**glob_values)
    except ValidationError as exc:
        raise SettingsError(_rule_problems(exc, first, {}, None), path) from None
    profiles: dict[Side, ProfileSettings] = {}
    seen: set[str] = set()
    for s in SIDES:
        try:
            profiles[s] = ProfileSettings(**{**shared, **per_side[s]})
        except ValidationError as exc:
            for p in _rule_problems(exc, first, keys_for_side[s], s):
                sig = p.message.rsplit(" [", 1)[0] + str(p.key)
                if sig not in seen:  # the same rule broken by shared keys: say it once
                    seen.add(sig)
                    problems.append(p)
    if not problems and profiles["long"].ema_trigger_timeframe != profiles["short"].ema_trigger_timeframe:
        # one candle feed serves both profiles: its timeframe is the base of both
        keys = [k for k in ("LONG_EMA_TRIGGER_TIMEFRAME", "SHORT_EMA_TRIGGER_TIMEFRAME", "LONG_TIMEFRAME",
                            "SHORT_TIMEFRAME") if k in first]
        a = first[keys[0]] if keys else None
        problems.append(Problem(
            f"the long and short profiles must share the base timeframe (EMA_TRIGGER_TIMEFRAME): long "
            f"{profiles['long'].ema_trigger_timeframe}, short {profiles['short'].ema_trigger_timeframe}; "
            "set it without a LONG_/SHORT_ prefix", keys[0] if keys else "EMA_TRIGGER_TIMEFRAME",
            a.line_no if a is not None else None))
    if problems:
        raise SettingsError(problems, path)
    return Settings(glob, profiles, {k: a.value for k, a in first.items()})


def load_settings(path: str | os.PathLike[str] | None = ".env", *, missing_ok: bool = True) -> Settings:
    """Load a `.env` file. A missing file gives the defaults when `missing_ok` (the demo runs
    with no configuration at all); a syntax error, bad value or unknown key raises SettingsError."""
    if path is None:
        return Settings.defaults()
    p = Path(path)
    if not p.exists():
        if missing_ok:
            return Settings.defaults()
        raise SettingsError([Problem(f"settings file {p} does not exist")], str(p))
    assignments, syntax = parse_lines(split_lines(_read(p)))
    if syntax:
        raise SettingsError([Problem(e.reason, e.key, e.line_no) for e in syntax], str(p))
    return settings_from_assignments(assignments, str(p))


def _read(p: Path) -> str:
    """The file's text; not UTF-8 or unreadable is a SettingsError naming the line."""
    try:
        return read_env_text(p)
    except EnvSyntaxError as e:
        raise SettingsError([Problem(e.reason, e.key, e.line_no)], str(p)) from None
    except OSError as exc:
        raise SettingsError([Problem(f"cannot read the settings file: {exc.strerror or exc}")], str(p)) from None


def planned_warnings(settings: Settings) -> list[str]:
    """Settings set in `.env` whose behaviour CROT does not implement yet (no silent no-op)."""
    out = []
    for key in settings.source:
        info = lookup(key)
        if info is not None and info.planned:
            out.append(f"{key} is not yet in effect in CROT; its value is validated but ignored")
    return out


#: risk settings (fractions: 0.02 = 2%) with the value above which a loud warning is given:
#: legal, since a trader may mean it, but far from any sane default, and the usual cause is a
#: percentage typed where a fraction is expected (0.5 meant as 0.5%).
RISK_WARN_ABOVE: dict[str, tuple[float, str]] = {
    "hard_stop_loss_pct": (0.10, "a stop this far away loses more than 10% of the position before it fires"),
    "hard_stop_loss_atr_max_pct": (0.15, "the ATR-widened stop may sit more than 15% away"),
    "hard_stop_loss_min_emergency_pct": (0.15, "a position without a stop is closed only after a move this large"),
    "hard_time_exit_max_loss_on_notional": (0.15, "the time exit may accept a loss of this share of the position"),
    "ema_position_budget_fraction": (0.10, "each new position takes this share of equity as margin"),
    "ema_max_position_margin_fraction": (0.20, "one position may hold this share of equity as margin"),
    "ema_max_total_margin_fraction": (0.90, "open positions may hold nearly all the equity as margin"),
}


def risk_warnings(settings: Settings) -> list[str]:
    """Risk fractions set beyond a sane bound (see RISK_WARN_ABOVE), one line each."""
    out = []
    for name, (limit, why) in RISK_WARN_ABOVE.items():
        found: dict[tuple[str, float], list[str]] = {}
        for side in SIDES:
            value = getattr(settings.side(side), name, None)
            if value is None or float(value) <= limit:
                continue
            key = name.upper()
            set_as = next((k for k in (f"{side.upper()}_{key}", key) if k in settings.source), key)
            found.setdefault((set_as, float(value)), []).append(side)
        for (set_as, value), sides in found.items():
            who = " and ".join(f"{s}" for s in sides) + (" profiles" if len(sides) > 1 else " profile")
            out.append(f"DANGER: {set_as}={value:g} is {value:.0%} ({who}): {why}. It is a fraction "
                       f"(0.02 = 2%); values above {limit:g} are rarely meant")
    return out


def danger_warnings(settings: Settings) -> list[str]:
    """Legal settings that leave money unprotected or at unusual risk: said loudly at `crot
    config check` and at every start, never silently accepted."""
    out = risk_warnings(settings)
    off = [s for s in SIDES if not settings.side(s).hard_stop_loss_enabled]
    if off:
        keys = [k for k in ("HARD_STOP_LOSS_ENABLED", "LONG_HARD_STOP_LOSS_ENABLED", "SHORT_HARD_STOP_LOSS_ENABLED")
                if k in settings.source]
        where = " and ".join(f"{s} profile" for s in off)
        out.append(f"DANGER: {'/'.join(keys) or 'HARD_STOP_LOSS_ENABLED'}=false: positions of the {where} "
                   "get NO stop-loss order on the exchange; if the bot crashes, hangs or loses its connection "
                   "nothing limits the loss. Remove the line to keep the hard stop on")
    return out


def file_warnings(path: str | os.PathLike[str]) -> list[str]:
    """Non-fatal remarks about the file itself (permissions of a file that holds API keys)."""
    p = Path(path)
    if not p.exists():
        return []
    mode = stat.S_IMODE(p.stat().st_mode)
    if mode & 0o077:
        return [f"{p} is readable by other users (mode {mode:04o}); run: chmod 600 {p}"]
    return []


def save_settings(path: str | os.PathLike[str], changes: dict[str, str | None]) -> Settings:
    """Apply editor changes to `.env`: validate the whole resulting file first, then write it
    atomically (mode 0600). `None` removes a key (back to its default). Nothing is written when
    the result would not load."""
    p = Path(path)
    old = _read(p) if p.exists() else ""
    new = update_env_text(old, changes)
    assignments, syntax = parse_lines(split_lines(new))
    if syntax:
        raise SettingsError([Problem(e.reason, e.key, e.line_no) for e in syntax], str(p))
    settings = settings_from_assignments(assignments, str(p))
    atomic_write_text(p, new)
    return settings
