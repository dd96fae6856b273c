"""Typed settings: one pydantic model, loaded from one `.env` file, with per-side overrides."""

from .loader import (
    Problem,
    SettingsError,
    file_warnings,
    load_settings,
    lookup,
    planned_warnings,
    save_settings,
    validate_value,
)
from .model import SIDES, GlobalSettings, ProfileSettings, Settings, Side, by_key, catalog, value_of

__all__ = [
    "SIDES", "GlobalSettings", "ProfileSettings", "Problem", "Settings", "SettingsError", "Side",
    "by_key", "catalog", "file_warnings", "load_settings", "lookup", "planned_warnings", "save_settings",
    "validate_value", "value_of",
]
