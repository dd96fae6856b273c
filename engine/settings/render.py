"""Everything generated from the settings model: `.env.example`, the settings docs, and
redacted snapshots of the effective values (for `crot config show` and run records).

Secrets never leave through here: every secret is replaced by a marker before rendering.
"""

from __future__ import annotations

from typing import Any

import tomli_w
from pydantic import SecretStr

from .fields import GROUP_TITLES, SettingInfo, format_value
from .model import SIDES, Settings, catalog, value_of

REDACTED = "***redacted***"


def _grouped() -> dict[str, list[SettingInfo]]:
    groups: dict[str, list[SettingInfo]] = {g: [] for g in GROUP_TITLES}
    for info in catalog():
        groups[info.group].append(info)
    return {g: items for g, items in groups.items() if items}


def env_example() -> str:
    """The text of `.env.example`: every setting, grouped, commented, with its default."""
    out = [
        "# CROT settings. Generated from the settings model by `crot config example`;",
        "# a test fails when this file is out of date. Copy it to .env and edit there.",
        "#",
        "# Format: KEY=value, one per line; '#' starts a comment. Lists are comma-separated.",
        "# Per-side overrides: prefix any setting marked [per side] with LONG_ or SHORT_, e.g.",
        "#   SHORT_EMA_POSITION_BUDGET_FRACTION=0.01",
        "# A wrong value or an unknown key stops the bot with an error naming the line;",
        "# nothing falls back to a default silently. Check a file with: crot config check",
        "",
    ]
    for group, items in _grouped().items():
        out += [f"# {'=' * 76}", f"# {GROUP_TITLES[group]}", f"# {'=' * 76}", ""]
        for info in items:
            scope = "[per side] " if info.scope == "side" else ""
            planned = "[not yet in effect] " if info.planned else ""
            out.append(f"# {scope}{planned}{info.description}")
            out.append(f"# Expected: {info.expected()}")
            default = "" if info.secret else format_value(info.default)
            out.append(f"{info.key}={default}")
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def settings_doc() -> str:
    """The text of docs/SETTINGS.md: one table per group."""
    out = [
        "# Settings reference",
        "",
        "Generated from the settings model (`crot config docs`); do not edit by hand.",
        "Every setting is read from `.env`. Settings marked *side* accept a `LONG_` or `SHORT_`",
        "prefix to override the shared value for one profile.",
        "",
        "Settings marked **Not yet in effect** come from the reference bot's catalog; CROT accepts",
        "and validates them (so an existing `.env` keeps working) but does not act on them yet, and",
        "`crot config check` warns when one is changed from its default.",
        "",
    ]
    for group, items in _grouped().items():
        out += [f"## {GROUP_TITLES[group]}", "", "| Key | Default | Expected | Scope | Description |",
                "|---|---|---|---|---|"]
        for info in items:
            default = "" if info.secret else format_value(info.default)
            note = "**Not yet in effect.** " if info.planned else ""
            out.append(f"| `{info.key}` | `{_md(default)}` | {_md(info.expected())} | {info.scope} "
                       f"| {note}{_md(info.description)} |")
        out.append("")
    return "\n".join(out)


def _plain(value: Any, info: SettingInfo) -> Any:
    if info.secret or isinstance(value, SecretStr):
        secret = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        return REDACTED if secret else ""
    if isinstance(value, tuple):
        return ["none" if v is None else v for v in value]
    return value


def snapshot(settings: Settings) -> dict[str, dict[str, Any]]:
    """Effective values, secrets redacted: {"global": {...}, "long": {...}, "short": {...}}."""
    snap: dict[str, dict[str, Any]] = {"global": {}, **{s: {} for s in SIDES}}
    for info in catalog():
        if info.scope == "global":
            snap["global"][info.key] = _plain(value_of(settings, info), info)
        else:
            for s in SIDES:
                snap[s][info.key] = _plain(value_of(settings, info, s), info)
    snap["global"]["ENABLED_PROFILES"] = list(settings.enabled)
    return snap


def snapshot_toml(settings: Settings) -> str:
    return tomli_w.dumps(snapshot(settings))


def display(value: Any, info: SettingInfo) -> str:
    """A value as shown to a person (secrets redacted)."""
    plain = _plain(value, info)
    if isinstance(plain, list):
        return ",".join(format_value(v) if not isinstance(v, str) else v for v in plain)
    return plain if isinstance(plain, str) else format_value(plain)
