"""Turn a reference-bot `.env` into a CROT `.env` (`crot config migrate`).

The mapping is data, in `RENAMES` and `MEANING_CHANGES`. Where each entry comes from:

- Reference-price keys: the reference settings catalog (spec/settings.tsv, group
  `reference_price`) lists 30 keys without a prefix (ENABLED, STALE_AFTER_MS, ...); CROT, like
  spec/STRATEGY.md, spells them EXTERNAL_PRICE_<NAME>. Issue #18 quotes a reference .env with
  EXTERNAL_PRICE_FEED_ENABLED, so the EXTERNAL_PRICE_FEED_<NAME> spelling maps too.
- EMA_ENTRY_LADDER_FRACTIONS and MACRO_GOLD_COINS: quoted in issue #18; CROT's entry ladder is
  EMA_LADDER_FRACTIONS/EMA_LADDER_OFFSETS and its macro keys carry no MACRO_ prefix, so
  MACRO_<key of the macro group> maps to <key> (inferred from the issue's example).
- Every other catalog key has the same name in CROT and is carried over unchanged.
- HARD_STOP_LOSS_MIN_EMERGENCY_PCT: same name, different meaning (the reference's floor on the
  stop distance; CROT's market-close threshold), from the catalog and engine/exits/hard_stop.py.

Nothing is dropped silently: every rename, meaning change, unknown key, duplicate and value
CROT rejects is reported, and a line left out is kept in the output as a comment. Values of
secret settings are carried over but never appear in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .envfile import EnvSyntaxError, format_value, parse_lines, read_env_text, split_lines
from .loader import SIDE_PREFIXES, SettingsError, _suggest, lookup, settings_from_assignments, validate_value
from .model import by_key


@dataclass(frozen=True)
class Mapping:
    old: str
    new: str
    transform: Callable[[str], str] | None = None  # old value -> CROT value; None: unchanged


_REFERENCE_PRICE_KEYS = (
    "ENABLED PRIMARY_EXCHANGE REFERENCE_EXCHANGES REST_POLL_INTERVAL_SEC REST_TIMEOUT_SEC MAX_PRICE_AGE_MS "
    "MIN_VALID_BID_QTY_USDT MIN_VALID_ASK_QTY_USDT MAX_INTERNAL_SPREAD_BPS ENTRY_FILTER_ENABLED "
    "SCORE_PENALTY_MULTIPLIER MAX_HTX_PREMIUM_FOR_LONG_BPS MAX_HTX_DISCOUNT_FOR_SHORT_BPS "
    "BLOCK_IF_EXCHANGE_DIVERGENCE_1M_BPS BLOCK_DURATION_SEC DIRECTIONAL_1M_GATE_ENABLED "
    "DIRECTIONAL_ENTRY_1M_BLOCK_BPS DIRECTIONAL_AVERAGING_1M_BLOCK_BPS IMPULSE_CONFIRMATION_ENABLED "
    "MEXC_LEAD_THRESHOLD_BPS_30S IMPULSE_SCORE_BONUS REQUIRE_SAME_DIRECTION EXIT_ADJUSTMENT_ENABLED "
    "LONG_TAKE_PROFIT_TIGHTEN_IF_HTX_PREMIUM_BPS SHORT_TAKE_PROFIT_TIGHTEN_IF_HTX_DISCOUNT_BPS "
    "TIGHTENED_LADDER_FRACTIONS TIGHTENED_LADDER_MARKUPS DISABLE_TRADING_IF_REFERENCE_STALE "
    "IGNORE_REFERENCE_IF_STALE STALE_AFTER_MS"
).split()

RENAMES: dict[str, Mapping] = {m.old: m for m in (
    *(Mapping(k, f"EXTERNAL_PRICE_{k}") for k in _REFERENCE_PRICE_KEYS),
    *(Mapping(f"EXTERNAL_PRICE_FEED_{k}", f"EXTERNAL_PRICE_{k}") for k in _REFERENCE_PRICE_KEYS),
    Mapping("EMA_ENTRY_LADDER_FRACTIONS", "EMA_LADDER_FRACTIONS"),
    Mapping("EMA_ENTRY_LADDER_OFFSETS", "EMA_LADDER_OFFSETS"),
)}

#: reference keys whose value cannot serve CROT: left out (as a comment), with the reason
LEFT_OUT: dict[str, str] = {
    "STATE_FILE": ("the reference's per-profile JSON state file is not CROT's state (one SQLite database for both "
                   "profiles, DATA_DIR/live.sqlite by default); set STATE_FILE to a new path if you want another"),
    "MARKETS_CACHE_FILE": ("the reference's per-profile markets cache is not CROT's (one JSON cache of HTX markets, "
                           "DATA_DIR/htx_markets.json by default)"),
}

MEANING_CHANGES: dict[str, str] = {
    "HARD_STOP_LOSS_MIN_EMERGENCY_PCT": (
        "meaning changed: in the reference a floor on the stop distance; in CROT the adverse move "
        "(fraction of the entry price) at which a position whose stop could not be placed is closed at market"),
}


def resolve(key: str) -> Mapping | None:
    """The CROT name of an old key (side prefix kept), or None when there is none."""
    if key in RENAMES:
        return RENAMES[key]
    prefix = next((p for p in SIDE_PREFIXES if key.startswith(p)), "")
    bare = key[len(prefix):]
    m = RENAMES.get(bare)
    if m is None and bare.startswith("MACRO_"):
        info = by_key().get(bare[len("MACRO_"):])
        if info is not None and info.group == "macro":
            m = Mapping(bare, info.key)
    if m is not None:
        return Mapping(key, prefix + m.new, m.transform)
    return Mapping(key, key) if lookup(key) is not None else None


@dataclass
class Migration:
    text: str  # the CROT .env
    notes: list[str] = field(default_factory=list)  # one line each, never a secret value
    kept: int = 0
    left_out: int = 0
    problems: list[str] = field(default_factory=list)  # what `crot config check` would still reject


class MigrateInputError(ValueError):
    """The old file cannot be read: one line naming the file and the line."""


def migrate_file(path: str) -> Migration:
    try:
        text = read_env_text(path)
    except FileNotFoundError:
        raise MigrateInputError(f"{path}: file not found") from None
    except EnvSyntaxError as e:
        raise MigrateInputError(f"{path}:{e.line_no}: {e.reason}") from None
    except OSError as exc:
        raise MigrateInputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    lines = split_lines(text)
    assignments, errors = parse_lines(lines)
    if errors:
        e = errors[0]  # the line text is not shown: it may hold an API key
        more = f" (and {len(errors) - 1} more bad lines)" if len(errors) > 1 else ""
        raise MigrateInputError(f"{path}:{e.line_no}: {e.key + ': ' if e.key else ''}{e.reason}{more}")
    return _migrate(lines, assignments, path)


def _migrate(lines, assignments, path: str) -> Migration:
    by_line = {a.line_no: a for a in assignments}
    out = [f"# Migrated from the reference-bot settings {path} by `crot config migrate`.",
           "# Lines starting with '# crot migrate:' were left out; see the report printed by the command."]
    mig = Migration(text="")
    seen: dict[str, int] = {}
    for i, line in enumerate(lines, start=1):
        a = by_line.get(i)
        if a is None:
            out.append(line)
            continue
        where = f"line {i}: "
        bare_old = next((a.key[len(p):] for p in SIDE_PREFIXES if a.key.startswith(p)), a.key)
        if bare_old in LEFT_OUT:
            mig.notes.append(f"{where}{a.key}: left out as a comment: {LEFT_OUT[bare_old]}")
            out.append(f"# crot migrate: not CROT's file: {line.strip()}")
            mig.left_out += 1
            continue
        m = resolve(a.key)
        if m is None:
            mig.notes.append(f"{where}unknown key {a.key}: not a CROT setting, left out as a comment"
                             f"{_suggest(a.key)}")
            out.append(f"# crot migrate: unknown key: {line.strip()}")
            mig.left_out += 1
            continue
        info = lookup(m.new)
        value = m.transform(a.value) if m.transform else a.value
        if m.new in seen:
            mig.notes.append(f"{where}{a.key}: {m.new} is already set on line {seen[m.new]}; "
                             "this line is left out as a comment")
            out.append(f"# crot migrate: duplicate of line {seen[m.new]}: {line.strip()}")
            mig.left_out += 1
            continue
        try:
            validate_value(m.new, value)
        except ValueError as exc:
            reason = "the value is not valid" if info.secret else str(exc)
            mig.notes.append(f"{where}{a.key}: CROT rejects this value ({reason}); left out as a comment, "
                             "so the CROT default applies")
            out.append(f"# crot migrate: value rejected: {line.strip()}")
            mig.left_out += 1
            continue
        if m.new != a.key:
            mig.notes.append(f"{where}renamed {a.key} -> {m.new}")
        bare = info.key
        if bare in MEANING_CHANGES:
            shown = "" if info.secret else f" (value {value} kept)"
            mig.notes.append(f"{where}{m.new}: {MEANING_CHANGES[bare]}{shown}")
        if info.planned:
            mig.notes.append(f"{where}{m.new}: accepted, but CROT does not act on it yet")
        seen[m.new] = i
        out.append(f"{m.new}={format_value(value)}{a.inline_comment}")
        mig.kept += 1
    mig.text = "\n".join(out) + "\n"
    new_assignments, _ = parse_lines(split_lines(mig.text))
    try:
        settings_from_assignments(new_assignments, None)
    except SettingsError as exc:
        mig.problems = [p.render() for p in exc.problems]
    return mig
