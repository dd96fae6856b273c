"""Settings editor, generated from the settings model (`engine.settings.catalog()`).

Grouped (the list on the left) and searchable (`/`: keys and descriptions). Each setting shows
its key, description, default, expected values (bounds, unit) and its state in `.env`; the
editor widget fits the type: Switch for true/false, Select for a fixed set of choices, a
password field for secrets (never shown, never pre-filled) and a text field for the rest,
validated as you type with the same rules the loader uses. `ctrl+o` switches between the
shared value and the LONG_/SHORT_ overrides of per-side settings. `ctrl+s` saves only the
changed keys through `save_settings`, which checks the whole resulting file first and then
writes it atomically (mode 0600); nothing is written when the result would not load.

The running engine does not reload settings: a saved change applies at the next start.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, OptionList, Select, Static, Switch
from textual.widgets.option_list import Option

from engine.exchange.errors import redact, register_secret
from engine.settings import SettingsError, catalog, lookup, save_settings, validate_value
from engine.settings.loader import danger_warnings
from engine.settings.envfile import parse_lines
from engine.settings.fields import GROUP_TITLES, SettingInfo
from engine.settings.render import display

SIDE_MODES = ("shared", "long", "short")
PREFIX = {"shared": "", "long": "LONG_", "short": "SHORT_"}
MAX_RESULTS = 40
FIRST_CHUNK = 8
CHUNK = 16
SEARCH_DELAY_S = 0.15
SHORT_TITLES = {
    "profiles": "Profiles & coins", "secrets": "API keys", "exchange": "Exchange", "signal": "Signal",
    "entry": "Entry gates", "sizing": "Sizing & caps", "fees": "Fees", "averaging": "Averaging",
    "exits": "Exits", "account": "Account guard", "protections": "Protections", "volatility": "Volatility",
    "macro": "Macro regime", "reference": "Reference price", "hedge": "BTC hedge", "monitoring": "Monitoring",
    "runtime": "Runtime",
}
RESTART_NOTE = "restart the bot to apply (the running engine keeps the settings it started with)"
#: how long a save notice stays (it also clears on the next edit); risk warnings stay longer
NOTICE_S = 6.0
DANGER_NOTICE_S = 30.0


def read_raw(path: Path) -> dict[str, str]:
    """Raw values set in the file (the last one of a key set twice); syntax errors are ignored
    here: the editor must open on a broken file, and saving reports them."""
    if not path.exists():
        return {}
    assignments, _ = parse_lines(path.read_text(encoding="utf-8").splitlines())
    return {a.key: a.value for a in assignments}


def _as_bool(raw: str | None, fallback: bool) -> bool:
    if raw is None:
        return fallback
    s = raw.strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    return fallback


class SettingField(Vertical):
    """One setting: key, description, editor, hint, inline error."""

    def __init__(self, info: SettingInfo, key: str, screen: "SettingsScreen") -> None:
        super().__init__(classes="setting", id=f"field-{key}")
        self.info = info
        self.key = key  # the .env key edited (with a LONG_/SHORT_ prefix for an override)
        self.editor = screen

    # -- what to show ------------------------------------------------------------------------
    def file_raw(self) -> str | None:
        return self.editor.raw.get(self.key)

    def inherited_raw(self) -> str | None:
        """For an override: the shared value it would inherit when unset."""
        if self.key == self.info.key:
            return None
        return self.editor.raw.get(self.info.key)

    def effective_text(self) -> str:
        raw = self.file_raw()
        if raw is not None:
            return "***" if self.info.secret and raw else raw
        inherited = self.inherited_raw()
        if inherited is not None:
            return f"{inherited} (shared)"
        return self.default_text()

    def overrides(self) -> dict[str, str]:
        """For the shared value of a per-side setting: the LONG_/SHORT_ overrides in use (set in
        .env, or edited and not saved yet), side -> value; {} otherwise."""
        if self.key != self.info.key or self.info.scope != "side":
            return {}
        pending, out = self.editor.pending, {}
        for side in ("long", "short"):
            k = f"{PREFIX[side]}{self.key}"
            raw = pending[k] if k in pending else self.editor.raw.get(k)
            if raw is not None:
                out[side] = "***" if self.info.secret and raw else raw
        return out

    def overrides_text(self) -> Text:
        over = self.overrides()
        t = Text()
        if not over:
            return t
        t.append("per side in use: ", style="dim")
        for n, side in enumerate(("long", "short")):
            if n:
                t.append(" / ", style="dim")
            if side in over:
                t.append(f"{side} {over[side]}", style="bold")
            else:
                t.append(f"{side} = shared", style="dim")
        return t

    def default_text(self) -> str:
        if self.info.secret:
            return "empty"
        d = display(self.info.default, self.info)
        return d if d != "" else "empty"

    def compose(self) -> ComposeResult:
        info = self.info
        head = Text()
        head.append(self.key, style="bold")
        scope = "per side" if info.scope == "side" else "global"
        head.append(f"  {scope}", style="dim")
        if info.planned:
            head.append("  not yet in effect", style="bold yellow")
        head.append("\n")
        head.append(info.description or "", style="dim")
        yield Static(head, classes="setting-head")
        with Horizontal(classes="setting-row"):
            yield self._make_editor()
            yield Static(classes="setting-status", id=f"status-{self.key}")
        # right under the editor: an error is seen where the value was typed
        yield Static(classes="setting-error", id=f"error-{self.key}")
        yield Static(classes="setting-overrides", id=f"overrides-{self.key}")
        yield Static(Text(f"default {self.default_text()} · {info.expected()}", style="dim"),
                     classes="setting-hint")

    def _make_editor(self) -> Any:
        info, key = self.info, self.key
        pending = self.editor.pending
        raw = pending[key] if key in pending else self.file_raw()
        if info.kind == "bool":
            fallback = _as_bool(self.inherited_raw(), bool(info.default))
            return Switch(value=_as_bool(raw, fallback), id=f"input-{key}", classes="setting-input")
        if info.kind == "choice":
            options = [(c, c) for c in info.choices]
            value = raw if raw in info.choices else Select.NULL
            prompt = f"default: {self.inherited_raw() or self.default_text()}"
            return Select(options, value=value, allow_blank=True, prompt=prompt, compact=True,
                          id=f"input-{key}", classes="setting-input")
        if info.secret:
            placeholder = "*** set: type to replace" if self.file_raw() else "not set: type to set"
            value = pending.get(key) or ""
            return Input(value=value, password=True, placeholder=placeholder, compact=True,
                         id=f"input-{key}", classes="setting-input")
        inherited = self.inherited_raw()
        placeholder = f"inherits {inherited}" if inherited is not None else f"default {self.default_text()}"
        return Input(value=raw or "", placeholder=placeholder, compact=True, id=f"input-{key}",
                     classes="setting-input")

    def on_mount(self) -> None:
        self.refresh_status()

    def refresh_status(self) -> None:
        info = self.info
        state = self.editor.field_state(self.key)
        status = Text()  # wraps on a narrow terminal rather than cutting the value in use
        label = {"unsaved": "● unsaved", "set": "set in .env", "unset": "not set"}[state]
        status.append(label, style="bold" if state == "unsaved" else "dim")
        if info.secret:
            status.append(" · ***" if self.file_raw() else "", style="dim")
        else:
            status.append(f" · in use: {self.effective_text()}", style="dim")
        self.query_one(f"#status-{self.key}", Static).update(status)
        self.set_class(state == "unsaved", "-unsaved")
        over = self.query_one(f"#overrides-{self.key}", Static)
        over_text = self.overrides_text()
        over.update(over_text)
        over.set_class(bool(over_text.plain), "-visible")
        error = self.editor.errors.get(self.key)
        err = self.query_one(f"#error-{self.key}", Static)
        was_visible = err.has_class("-visible")
        err.update(Text(f"✗ {error}") if error else "")
        err.set_class(bool(error), "-visible")
        self.set_class(bool(error), "-invalid")
        if error and not was_visible:
            self.call_after_refresh(self.show_error)

    def show_error(self) -> None:
        """Scroll the list so the field's error line is on screen (it may sit below the fold)."""
        err = self.query_one(f"#error-{self.key}", Static)
        if err.has_class("-visible"):
            err.scroll_visible(animate=False)

    def reset_editor(self) -> None:
        """Show what a reset left: the editor shows the default/inherited value again."""
        w = self.query_one(f"#input-{self.key}")
        with self.editor.prevent(Input.Changed, Switch.Changed, Select.Changed):
            if isinstance(w, Switch):
                w.value = _as_bool(self.inherited_raw(), bool(self.info.default))
            elif isinstance(w, Select):
                w.value = Select.NULL
            elif isinstance(w, Input):
                w.value = ""


class SettingsScreen(Screen):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("slash", "search", "Search", key_display="/"),
        Binding("ctrl+o", "cycle_side", "Shared/LONG_/SHORT_"),
        Binding("ctrl+r", "reset_field", "Reset"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, path: Path) -> None:
        super().__init__(id="settings")
        self.path = Path(path)
        self.raw: dict[str, str] = read_raw(self.path)
        self.pending: dict[str, str | None] = {}
        self.errors: dict[str, str] = {}
        self.side = "shared"
        self.group = next(iter(GROUP_TITLES))
        self.query_text = ""
        self.infos = list(catalog())
        self._shown: list[str] = []
        self._search_timer: Timer | None = None
        self._group_timer: Timer | None = None
        self._notice_timer: Timer | None = None
        self.notice = False  # a save result is shown in the message line (cleared by the next edit)
        self.populated = asyncio.Event()  # set when the visible fields are all mounted

    # -- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="settings-title")
        with Horizontal(id="settings-bar"):
            yield Input(placeholder="/ search keys and descriptions", compact=True, id="settings-search")
            yield Static(id="settings-side")
        with Horizontal(id="settings-main"):
            yield OptionList(*[Option(self._group_label(g), id=g) for g in GROUP_TITLES if self._count(g)],
                             id="settings-groups")
            yield VerticalScroll(id="settings-fields")
        yield Static(id="settings-message")
        yield Footer(compact=True)

    def _count(self, group: str) -> int:
        return sum(1 for i in self.infos if i.group == group)

    def _group_label(self, group: str) -> str:
        return f"{SHORT_TITLES.get(group, GROUP_TITLES[group])} ({self._count(group)})"

    async def on_mount(self) -> None:
        self._refresh_header()
        self._message(self._hint())
        groups = self.query_one("#settings-groups", OptionList)
        groups.highlighted = 0
        self._show()
        groups.focus()

    def _refresh_header(self) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" Settings ", style="bold reverse")
        t.append(f" {self.path}  {len(self.infos)} settings", style="")
        n = len(self.pending)
        if n:
            t.append(f"  {n} unsaved change(s)", style="bold")
        if self.errors:
            t.append(f"  {len(self.errors)} invalid", style="bold red")
        self.query_one("#settings-title", Static).update(t)
        side = Text(no_wrap=True)
        side.append("edit: ", style="dim")
        for mode in SIDE_MODES:
            label = {"shared": "shared", "long": "LONG_", "short": "SHORT_"}[mode]
            side.append(f" {label} ", style="bold reverse" if mode == self.side else "dim")
        self.query_one("#settings-side", Static).update(side)

    def _hint(self) -> Text:
        return Text(f"ctrl+s saves the changed keys to {self.path}; {RESTART_NOTE}.", style="dim")

    def _message(self, text: Text | str) -> None:
        self.query_one("#settings-message", Static).update(text)

    def _notice(self, text: Text, clear_after: float | None = NOTICE_S) -> None:
        """A save result: shown until the next edit, or for `clear_after` seconds."""
        self._message(text)
        self.notice = True
        if self._notice_timer is not None:
            self._notice_timer.stop()
            self._notice_timer = None
        if clear_after is not None:
            self._notice_timer = self.set_timer(clear_after, self.clear_notice)

    def clear_notice(self) -> None:
        if self._notice_timer is not None:
            self._notice_timer.stop()
            self._notice_timer = None
        if self.notice:
            self.notice = False
            self._message(self._hint())

    # -- which fields -----------------------------------------------------------------------
    def _visible_infos(self) -> tuple[str, list[SettingInfo]]:
        infos = self.infos
        if self.side != "shared":
            infos = [i for i in infos if i.scope == "side"]
        q = self.query_text.strip().lower()
        if q:
            words = q.split()
            found = [i for i in infos if all(w in f"{i.key} {i.description} {i.name}".lower() for w in words)]
            title = f"search '{self.query_text.strip()}': {len(found)} match(es)"
            if len(found) > MAX_RESULTS:
                title += f", first {MAX_RESULTS} shown"
            return title, found[:MAX_RESULTS]
        found = [i for i in infos if i.group == self.group]
        title = GROUP_TITLES[self.group]
        if self.side != "shared":
            title += f"  ({PREFIX[self.side]} overrides; global settings only in shared)"
        return title, found

    def edit_key(self, info: SettingInfo) -> str:
        return f"{PREFIX[self.side]}{info.key}" if info.scope == "side" else info.key

    def _show(self) -> None:
        """Rebuild the list of fields (in a worker: a newer request cancels an older one)."""
        self.populated.clear()
        self.run_worker(self._populate(), group="fields", exclusive=True)

    async def _populate(self) -> None:
        title, infos = self._visible_infos()
        box = self.query_one("#settings-fields", VerticalScroll)
        await box.remove_children()
        box.border_title = title
        self._shown = [self.edit_key(i) for i in infos]
        if not infos:
            await box.mount(Static(Text("nothing matches", style="dim"), classes="setting-empty"))
            self.populated.set()
            return
        # the first screenful at once, the rest in chunks so keys and rendering stay responsive
        chunks = [infos[:FIRST_CHUNK]] + [infos[i:i + CHUNK] for i in range(FIRST_CHUNK, len(infos), CHUNK)]
        for n, chunk in enumerate(chunks):
            if n:
                await asyncio.sleep(0)
            await box.mount_all([SettingField(i, self.edit_key(i), self) for i in chunk])
            if n == 0:
                box.scroll_home(animate=False)
        self.populated.set()

    def field(self, key: str) -> SettingField | None:
        try:
            return self.query_one(f"#field-{key}", SettingField)
        except Exception:
            return None

    def field_state(self, key: str) -> str:
        if key in self.pending:
            return "unsaved"
        return "set" if key in self.raw else "unset"

    # -- events -----------------------------------------------------------------------------
    @on(OptionList.OptionHighlighted, "#settings-groups")
    def _group_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        group = event.option.id
        if group and group != self.group:
            self.group = group
            if not self.query_text.strip():
                if self._group_timer is not None:
                    self._group_timer.stop()
                self._group_timer = self.set_timer(SEARCH_DELAY_S, self._show)

    @on(OptionList.OptionSelected, "#settings-groups")
    def _group_selected(self, event: OptionList.OptionSelected) -> None:
        self.focus_first_field()

    @on(Input.Changed, "#settings-search")
    def _search_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_text = event.value
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(SEARCH_DELAY_S, self._show)  # debounced: typing stays fluid

    @on(Input.Submitted, "#settings-search")
    async def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._search_timer is not None:
            self._search_timer.stop()
            self._search_timer = None
            self._show()
        await self.populated.wait()
        self.focus_first_field()

    @on(Input.Changed, ".setting-input")
    def _input_changed(self, event: Input.Changed) -> None:
        event.stop()
        key = (event.input.id or "").removeprefix("input-")
        f = self.field(key)
        if f is None:
            return
        raw = event.value.strip()
        if f.info.secret:
            new: str | None = raw if raw else None
            if new is None:
                self._set_pending(key, None, unchanged=True)
                return
            register_secret(new)
            self._set_pending(key, new)
            return
        new = raw if raw else None
        self._set_pending(key, new, unchanged=(new == self.raw.get(key)))

    @on(Switch.Changed, ".setting-input")
    def _switch_changed(self, event: Switch.Changed) -> None:
        event.stop()
        key = (event.switch.id or "").removeprefix("input-")
        f = self.field(key)
        if f is None:
            return
        new = "true" if event.value else "false"
        current = self.raw.get(key)
        if current is None:
            baseline = _as_bool(f.inherited_raw(), bool(f.info.default))
            unchanged = event.value == baseline
        else:
            unchanged = _as_bool(current, not event.value) == event.value
        self._set_pending(key, new, unchanged=unchanged)

    @on(Select.Changed, ".setting-input")
    def _select_changed(self, event: Select.Changed) -> None:
        event.stop()
        key = (event.select.id or "").removeprefix("input-")
        new = None if event.value is Select.NULL else str(event.value)
        self._set_pending(key, new, unchanged=(new == self.raw.get(key)))

    def _set_pending(self, key: str, new: str | None, *, unchanged: bool = False) -> None:
        """Record an edit (None = remove the key from .env) and validate it inline."""
        self.clear_notice()
        if unchanged:
            self.pending.pop(key, None)
            self.errors.pop(key, None)
        else:
            self.pending[key] = new
            self.errors.pop(key, None)
            if new is not None:
                try:
                    validate_value(key, new)
                except ValueError as exc:
                    info = lookup(key)
                    msg = str(exc)
                    if info is not None and info.secret:
                        msg = redact(msg.replace(new, "***"))
                    self.errors[key] = msg
        f = self.field(key)
        if f is not None:
            f.refresh_status()
        if key != (shared := self._shared_key(key)):  # an override: the shared field lists it
            g = self.field(shared)
            if g is not None:
                g.refresh_status()
        self._refresh_header()

    @staticmethod
    def _shared_key(key: str) -> str:
        for prefix in ("LONG_", "SHORT_"):
            if key.startswith(prefix):
                info = lookup(key[len(prefix):])
                if info is not None and info.scope == "side":
                    return info.key
        return key

    # -- actions ----------------------------------------------------------------------------
    def action_search(self) -> None:
        self.query_one("#settings-search", Input).focus()

    def action_cycle_side(self) -> None:
        self.side = SIDE_MODES[(SIDE_MODES.index(self.side) + 1) % len(SIDE_MODES)]
        self._refresh_header()
        self._show()

    def action_reset_field(self) -> None:
        node = self.focused
        while node is not None and not isinstance(node, SettingField):
            node = node.parent  # type: ignore[assignment]
        if not isinstance(node, SettingField):
            self.notify("focus a setting first (tab into the list of settings)", severity="warning")
            return
        key = node.key
        if key in self.raw:
            self._set_pending(key, None)
        else:
            self._set_pending(key, None, unchanged=True)
        node.reset_editor()
        node.refresh_status()
        self.notify(f"{key}: back to {'the shared value' if node.inherited_raw() is not None else 'the default'}"
                    " when saved" if key in self.raw else f"{key}: not set (default)")

    def focus_first_field(self) -> None:
        inputs = self.query(".setting-input")
        if inputs:
            inputs.first().focus()

    def action_back(self) -> None:
        search = self.query_one("#settings-search", Input)
        if self.focused is search and search.value:
            search.value = ""
            return
        if not self.pending:
            self.app.pop_screen()
            return
        from .confirm import ConfirmScreen

        def answer(drop: bool | None) -> None:
            if drop:
                self.app.pop_screen()

        self.app.push_screen(ConfirmScreen(f"Drop {len(self.pending)} unsaved change(s)?", yes="Drop",
                                           no="Keep editing"), answer)

    def action_save(self) -> None:
        if self.errors:
            keys = ", ".join(sorted(self.errors))
            self._notice(Text(f"✗ not saved: fix the invalid value(s) first: {keys}", style="bold red"), None)
            f = self.field(sorted(self.errors)[0])
            if f is not None:
                f.query_one(".setting-input").focus()
                f.call_after_refresh(f.show_error)
            return
        if not self.pending:
            self._notice(Text("nothing to save: no setting was changed", style="dim"))
            return
        changes = dict(self.pending)
        try:
            saved = save_settings(self.path, changes)
        except SettingsError as exc:
            lines = Text()
            lines.append(f"✗ not saved ({len(exc.problems)} problem(s); the file is unchanged):", style="bold red")
            for p in exc.problems:
                where = f"line {p.line}: " if p.line else ""
                key = f"{p.key}: " if p.key else ""
                lines.append(f"\n  {where}{key}{redact(p.message)}")
                if p.key:
                    for k in [k.strip() for k in p.key.split(",")]:
                        if k in self.pending or k in self._shown:
                            self.errors[k] = redact(p.message)
                            f = self.field(k)
                            if f is not None:
                                f.refresh_status()
            self._notice(lines, None)
            self._refresh_header()
            return
        except OSError as exc:
            self._notice(Text(f"✗ not saved: cannot write {self.path}: {exc.strerror or exc}", style="bold red"),
                         None)
            return
        self.raw = read_raw(self.path)
        self.pending.clear()
        self.errors.clear()
        for f in self.query(SettingField):
            f.refresh_status()
        names = ", ".join(sorted(changes))
        message = Text(f"✓ saved {len(changes)} change(s) to {self.path} ({names}); {RESTART_NOTE}.", style="bold")
        dangers = danger_warnings(saved)
        for w in dangers:  # legal but risky (a 50% stop, no stop at all): said where it was typed
            message.append(f"\n⚠ {w}", style="bold yellow")
        self._notice(message, DANGER_NOTICE_S if dangers else NOTICE_S)
        self._refresh_header()
        if dangers:
            self.notify(f"saved; {len(dangers)} risk warning(s): read them before you restart", title="Settings",
                        severity="warning")
        else:
            self.notify(f"saved {len(changes)} change(s); restart the bot to apply", title="Settings")
