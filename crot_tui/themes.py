"""Themes are TCSS files in the top-level `themes/` folder, selectable by file name.

A theme file is ordinary Textual CSS. Its palette is declared as variables at the top
(`$primary: #5f87d7;` ...): those become a Textual `Theme` (so every built-in widget follows
the palette; `$dark: false;` marks a light theme; other variables such as `$crot-long` become
theme variables usable in any TCSS) and the rest of the file is added to the app's stylesheet with a higher priority
than the app's own rules, so a theme can restyle any pane. Colours should stay within the
xterm 256-colour cube (tmux over SSH).

Where themes are looked up, first match wins: $CROT_THEMES_DIR, the `themes/` folder next to
the package (a source checkout), `./themes`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from textual.theme import Theme

DEFAULT_THEME = "dark"
PALETTE_KEYS = ("primary", "secondary", "accent", "warning", "error", "success", "foreground",
                "background", "surface", "panel", "boost")
_VAR = re.compile(r"^\s*\$([A-Za-z0-9_-]+)\s*:\s*([^;]+);", re.MULTILINE)
_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)

#: used when no theme file can be found at all (e.g. an installed wheel without themes/)
FALLBACK_PALETTE = {
    "primary": "#5f87d7", "secondary": "#5f5f87", "accent": "#ffaf00", "warning": "#ffaf00",
    "error": "#ff5f5f", "success": "#5fd75f", "foreground": "#d0d0d0", "background": "#1c1c1c",
    "surface": "#262626", "panel": "#303030",
}


@dataclass(frozen=True)
class ThemeFile:
    name: str
    path: Path | None
    css: str
    palette: dict[str, str]
    variables: dict[str, str]  # other variables, e.g. $crot-long
    dark: bool = True

    @property
    def textual_name(self) -> str:
        return f"crot-{self.name}"

    def to_textual(self) -> Theme:
        return Theme(name=self.textual_name, dark=self.dark, variables=dict(self.variables),
                     **{k: v for k, v in self.palette.items() if k in PALETTE_KEYS})


def theme_dirs() -> list[Path]:
    dirs: list[Path] = []
    env = os.environ.get("CROT_THEMES_DIR")
    if env:
        dirs.append(Path(env))
    dirs.append(Path(__file__).resolve().parents[1] / "themes")
    dirs.append(Path.cwd() / "themes")
    out: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def available() -> dict[str, Path]:
    """Theme name -> file, sorted by name."""
    found: dict[str, Path] = {}
    for d in theme_dirs():
        for p in sorted(d.glob("*.tcss")):
            found.setdefault(p.stem, p)
    return dict(sorted(found.items()))


def parse(name: str, css: str, path: Path | None = None) -> ThemeFile:
    palette: dict[str, str] = {}
    variables: dict[str, str] = {}
    dark = True
    for m in _VAR.finditer(_COMMENT.sub("", css)):
        key, value = m.group(1), m.group(2).strip()
        if key == "dark":
            dark = value.lower() not in ("false", "no", "0")
        elif key in PALETTE_KEYS:
            palette[key] = value
        else:
            variables[key] = value
    if "primary" not in palette:
        raise ValueError(f"theme {name!r} ({path}) does not declare $primary")
    # The declarations become the Textual theme (and so app-wide variables); the stylesheet gets
    # only the rules (a declaration in a stylesheet source would leak into other sources).
    css = _VAR.sub("", css)
    return ThemeFile(name, path, css, palette, variables, dark)


def load(name: str) -> ThemeFile:
    """Load a theme by name; ValueError names the available ones when it does not exist."""
    themes = available()
    path = themes.get(name)
    if path is None:
        if name == DEFAULT_THEME and not themes:
            return ThemeFile(DEFAULT_THEME, None, "", dict(FALLBACK_PALETTE), {}, True)
        names = ", ".join(themes) or "none found"
        raise ValueError(f"unknown theme {name!r}; available: {names}")
    return parse(name, path.read_text(encoding="utf-8"), path)


def names() -> list[str]:
    return list(available()) or [DEFAULT_THEME]
