"""Shared helper of the settings effect tests (issue 18): settings built the way a user's
.env builds them, one key changed at a time."""

from __future__ import annotations

import re

from engine.settings import Settings
from engine.settings.envfile import Assignment
from engine.settings.loader import settings_from_assignments


def settings(**values: object) -> Settings:
    """Settings from .env-style assignments (KEY=value text, validated like a .env file)."""
    return settings_from_assignments([Assignment(k, str(v), i + 1) for i, (k, v) in enumerate(values.items())])


#: test files of the settings machinery (parsing, rendering, rules, docs, the editor, secret
#: scans): they read values, they do not show an effect, so naming a setting there is no proof
MACHINERY = re.compile(r"test_settings_(?!.*effect)|test_strategy_doc|test_cli_help|test_tui_app|test_tui_snapshots"
                       r"|test_secrets_")
