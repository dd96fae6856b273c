"""Building blocks shared by the panes: the listening pane and the keyed live table."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from rich.text import Text
from textual import on
from textual.containers import Vertical
from textual.events import Resize
from textual.geometry import Size
from textual.widget import Widget
from textual.widgets import DataTable

from ..messages import StateMessage
from ..state import UiState

Cell = Text


class Pane(Vertical):
    """A dashboard pane: a titled box that refreshes itself from `UiState` when the app posts
    one of the messages in `LISTENS` (at most a few times per second)."""

    LISTENS: tuple[type[StateMessage], ...] = ()
    TITLE = ""
    KEY = ""  # the number key that shows/focuses it
    #: the column keys (of the pane's table) that must stay fully visible at 80x24
    KEY_COLUMNS: tuple[str, ...] = ()

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("classes", "pane")
        super().__init__(**kw)
        self.more = ""
        self.border_title = self._title()

    def _title(self) -> str:
        title = f"{self.KEY} {self.TITLE}" if self.KEY else self.TITLE
        return f"{title} [dim]{self.more}[/]" if self.more else title

    def set_more(self, hint: str) -> None:
        """Show (or clear) the hint that the pane's table is wider than the pane: '→ more'."""
        if hint != self.more:
            self.more = hint
            self.border_title = self._title()

    def on_mount(self) -> None:
        listen = getattr(self.app, "listen", None)
        if listen is not None:
            listen(self)
            self.update_state(self.app.state)  # type: ignore[attr-defined]

    def on_unmount(self) -> None:
        unlisten = getattr(self.app, "unlisten", None)
        if unlisten is not None:
            unlisten(self)

    @on(StateMessage)
    def _state_changed(self, message: StateMessage) -> None:
        self.update_state(message.state)

    def update_state(self, state: UiState) -> None:  # pragma: no cover - abstract
        """Refresh from the state; touch only what changed."""

    def focus_main(self) -> None:
        """Focus the pane's main widget (its table), or the pane itself."""
        for w in self.query("*"):
            if isinstance(w, Widget) and w.focusable:
                w.focus()
                return
        if self.can_focus:
            self.focus()

    def color(self, name: str) -> str:
        colors = getattr(self.app, "tones", {})
        return colors.get(name, "")


def _signature(cell: Any) -> Any:
    if isinstance(cell, Text):
        return cell.plain, str(cell.style), tuple((s.start, s.end, str(s.style)) for s in cell.spans)
    return cell


class KeyedTable(DataTable):
    """A DataTable whose rows are identified by a key (usually the symbol).

    `sync(rows)` adds new keys, removes vanished ones and calls `update_cell` only for cells
    whose content changed: the table is never cleared and rebuilt on a refresh."""

    def __init__(self, columns: Sequence[tuple[str, str, int | None]], **kw: Any) -> None:
        kw.setdefault("cursor_type", "row")
        kw.setdefault("zebra_stripes", False)
        super().__init__(**kw)
        self._spec = list(columns)
        self._cells: dict[str, tuple[Any, ...]] = {}
        self.more = ""  # '→ more' / '← more' / '← → more' when the columns are wider than the table
        for key, label, width in self._spec:
            self.add_column(label, key=key, width=width)

    # -- "this table scrolls": a hint in the pane title when columns are cut ---------------------
    def column_extent(self, key: str) -> int:
        """Where the column `key` ends (cells from the table's left edge, unscrolled)."""
        end = self._row_label_column_width
        for k, column in self.columns.items():
            end += column.get_render_width(self)
            if k.value == key:
                return end
        raise KeyError(key)

    def more_hint(self) -> str:
        visible = self.scrollable_content_region.width
        if not visible or self.virtual_size.width <= visible:
            return ""
        left = self.scroll_x > 0
        rightward = self.scroll_x < self.max_scroll_x
        return "← → more" if left and rightward else "→ more" if rightward else "← more" if left else ""

    def _update_more(self) -> None:
        hint = self.more_hint()
        if hint == self.more:
            return
        self.more = hint
        node = self.parent
        while node is not None and not isinstance(node, Pane):
            node = node.parent
        if isinstance(node, Pane):
            node.set_more(hint)

    def watch_virtual_size(self, size: Size) -> None:
        self.call_after_refresh(self._update_more)

    def watch_scroll_x(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_x(old_value, new_value)
        self._update_more()

    def on_resize(self, event: Resize) -> None:
        self.call_after_refresh(self._update_more)

    @property
    def keys(self) -> list[str]:
        return list(self._cells)

    def sync(self, rows: dict[str, Sequence[Any]], order: Iterable[str] | None = None) -> bool:
        """Bring the table to `rows` (key -> cells). Returns True when anything changed."""
        changed = False
        for key in [k for k in self._cells if k not in rows]:
            self.remove_row(key)
            del self._cells[key]
            changed = True
        for key in (order if order is not None else rows):
            cells = tuple(rows[key])
            old = self._cells.get(key)
            if old is None:
                self.add_row(*cells, key=key)
                changed = True
            else:
                for (col, _, _), new, prev in zip(self._spec, cells, old):
                    if _signature(new) != _signature(prev):
                        self.update_cell(key, col, new, update_width=True)
                        changed = True
            self._cells[key] = cells
        return changed

    def current_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except Exception:
            return None
        return None if row_key.value is None else str(row_key.value)


def styled(text: str, style: str = "") -> Text:
    return Text(text, style=style or "", no_wrap=True, overflow="ellipsis")


def right(text: str, style: str = "") -> Text:
    return Text(text, style=style or "", justify="right", no_wrap=True)
