"""One position or closed trade in detail: its orders, fills and stop moves in the order the
engine reported them, the trade that closed it, and the gate decision behind its entry order.

The source is the events the app received (`UiState.episodes` / `UiState.closed`, bounded), so
it works the same in a viewer attached to a bot in another process; a position opened before
the app started shows what was seen since. Updates live while the position is open.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from .. import fmt
from ..messages import LogAppended, PositionsChanged
from ..state import Episode, UiState
from ..widgets.base import KeyedTable, right, styled
from ..widgets.positions import short_symbol
from .inspector import COLUMNS as GATE_COLUMNS
from .inspector import decision_summary, gate_rows

TIMELINE = [
    ("time", "time", None),
    ("event", "event", 6),
    ("action", "action", None),
    ("purpose", "purpose", None),
    ("side", "side", 5),
    ("price", "price", None),
    ("amount", "amount", None),
    ("detail", "detail", None),
]


def event_cells(e: Any, colors: dict[str, str]) -> tuple[Text, ...]:
    """One row of the timeline; every text is plain (brackets in reasons stay literal)."""
    muted, warn, loss = colors.get("muted", ""), colors.get("warn", ""), colors.get("loss", "")
    stamp = styled(fmt.ts(e.ts_ms, date=False) or fmt.DASH, muted)
    kind = e.kind
    if kind == "order":
        bad = e.action in ("rejected", "failed")
        detail = ", ".join(x for x in (e.reason, "reduce-only" if e.reduce_only else "",
                                       f"id {e.client_order_id}" if e.client_order_id is not None else "") if x)
        return (stamp, styled("order"), styled(e.action, f"bold {warn}" if bad else ""), styled(e.purpose),
                styled(e.side), right(fmt.price(e.price)), right(fmt.amount(e.amount)), styled(detail, muted))
    if kind == "fill":
        return (stamp, styled("fill", "bold"), styled("filled"), styled(e.purpose), styled(e.side),
                right(fmt.price(e.price)), right(fmt.amount(e.amount)), styled(f"fee {fmt.price(e.fee, 3)}", muted))
    if kind == "stop":
        bad = e.action in ("missing", "emergency_close")
        return (stamp, styled("stop"), styled(e.action, f"bold {loss}" if bad else ""), styled("stop"),
                styled(""), right(fmt.price(e.trigger)), right(fmt.amount(e.amount)), styled(e.reason, muted))
    if kind == "trade":
        pnl = float(e.pnl)
        style = colors.get("profit", "") if pnl > 0 else loss if pnl < 0 else ""
        return (stamp, styled("trade", "bold"), styled("closed", style), styled(e.reason), styled(e.side),
                right(fmt.price(e.exit_price)), right(fmt.amount(e.contracts)),
                styled(f"pnl {fmt.money(pnl, 4, sign=True)}, fees {fmt.money(e.fees, 4)}", style))
    if kind == "repair":
        return (stamp, styled("repair", warn), styled(e.action, warn), styled(""), styled(""), right(""),
                right(""), styled(e.problem, muted))
    return (stamp, styled(kind), styled(str(getattr(e, "action", ""))), styled(""), styled(""), right(""),
            right(""), styled(""))


class DetailScreen(Screen):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("tab", "switch_tab", "Timeline/gates"),
        Binding("c", "chart", "Chart"),
        Binding("question_mark", "app.help", "Help", key_display="?"),
    ]
    LISTENS = (PositionsChanged, LogAppended)
    DEFAULT_CSS = """
    DetailScreen #detail-title {
        height: auto;
        max-height: 3;
        padding: 0 1;
    }
    DetailScreen #detail-decision {
        height: auto;
        max-height: 3;
        padding: 0 1;
    }
    DetailScreen #detail-tabs {
        height: 1fr;
    }
    DetailScreen DataTable {
        height: 1fr;
    }
    """

    def __init__(self, profile: str, symbol: str, *, trade_seq: int | None = None,
                 audit_db: Path | None = None) -> None:
        super().__init__(id="detail")
        self.profile = profile
        self.symbol = symbol
        self.trade_seq = trade_seq
        self.audit_db = audit_db
        self.episode: Episode | None = None
        self.from_audit: Episode | None = None  # what the audit trail had, when the events were not seen
        self.audit_loaded = asyncio.Event()  # set once the audit trail was read (or there is none)
        self._audit_asked = False
        self._sig: tuple[Any, ...] = ()

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        yield Static(id="detail-decision")
        with TabbedContent(id="detail-tabs"):
            with TabPane("Orders, fills, stops", id="tab-timeline"):
                yield DataTable(id="detail-timeline", cursor_type="row", zebra_stripes=False)
            with TabPane("Entry gates", id="tab-gates"):
                yield KeyedTable(GATE_COLUMNS, id="detail-gates")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#detail-timeline", DataTable)
        for key, label, width in TIMELINE:
            table.add_column(label, key=key, width=width)
        self.app.listen(self)  # type: ignore[attr-defined]
        self.update_state(self.app.state)  # type: ignore[attr-defined]
        table.focus()

    def on_unmount(self) -> None:
        self.app.unlisten(self)  # type: ignore[attr-defined]

    def on_positions_changed(self, message: PositionsChanged) -> None:
        self.update_state(message.state)

    def on_log_appended(self, message: LogAppended) -> None:
        self.update_state(message.state)

    def find(self, state: UiState) -> Episode | None:
        if self.trade_seq is not None:
            return state.closed_trade(self.trade_seq)
        if self.episode is not None:  # the same object carries on when the position closes
            return self.episode
        return state.episode(self.profile, self.symbol)

    def position(self, state: UiState) -> Any:
        for p in state.positions.get(self.profile, ()):
            if p.symbol == self.symbol:
                return p
        return None

    def _audit_episode(self, window: tuple[int, int | None] | None) -> Episode | None:
        """The position's history from the audit trail (read-only): asked once per screen, in a
        thread (a long record must not stall the UI); the view updates when it is in."""
        if self._audit_asked or self.audit_db is None or window is None:
            if not self._audit_asked:
                self.audit_loaded.set()  # nothing to load
            return self.from_audit
        self._audit_asked = True
        self.run_worker(lambda: self._load_audit(self.audit_db, *window), thread=True,  # type: ignore[arg-type]
                        name="detail-audit", exit_on_error=False)
        return None

    def _load_audit(self, path: Path, opened_ms: int, until_ms: int | None = None) -> None:
        from engine.store.audit_query import entry_decision, position_events

        ep = Episode(self.profile, self.symbol)
        try:
            for e in position_events(path, self.profile, self.symbol, opened_ms=opened_ms, until_ms=until_ms):
                ep.add(e)
            entry = next((e for e in ep.events if getattr(e, "purpose", "") == "entry"), None)
            at = entry.ts_ms if entry is not None else opened_ms
            ep.decision = entry_decision(path, self.profile, self.symbol, at)
            ep.decision_ts = at
        finally:
            self.app.call_from_thread(self._audit_done, ep)

    def _audit_done(self, ep: Episode) -> None:
        self.from_audit = ep
        self._sig = ("audit",)  # redraw
        self.update_state(self.app.state)  # type: ignore[attr-defined]
        self.audit_loaded.set()

    def _merged(self, ep: Episode | None, pos: Any) -> Episode | None:
        """The events seen, after what the audit trail had from before them."""
        window: tuple[int, int | None] | None = None
        if pos is not None and pos.opened_ms:
            window = (pos.opened_ms, None)
        elif ep is not None and ep.history and ep.trade is not None and ep.trade.opened_ms:
            window = (ep.trade.opened_ms, ep.trade.ts_ms)  # a trade from before the app started
        audit = self._audit_episode(window) if ep is None or ep.decision is None else self.from_audit
        if audit is None or not audit.events and audit.decision is None:
            return ep
        merged = Episode(self.profile, self.symbol)
        seen = {(e.kind, e.ts_ms, getattr(e, "action", ""), getattr(e, "purpose", "")) for e in
                (ep.events if ep is not None else ())}
        for e in audit.events:
            if (e.kind, e.ts_ms, getattr(e, "action", ""), getattr(e, "purpose", "")) not in seen:
                merged.add(e)
        for e in (ep.events if ep is not None else ()):
            merged.add(e)
        merged.decision = ep.decision if ep is not None and ep.decision is not None else audit.decision
        merged.decision_ts = ep.decision_ts if ep is not None and ep.decision is not None else audit.decision_ts
        if ep is not None:
            merged.trade, merged.seq, merged.dropped = ep.trade, ep.seq, ep.dropped
        return merged

    def update_state(self, state: UiState) -> None:
        self.episode = ep = self.find(state)
        pos = self.position(state) if ep is None or ep.trade is None else None
        ep = self._merged(ep, pos)
        n = len(ep.events) + ep.dropped if ep is not None else -1
        sig = (id(self.episode), n, ep.trade if ep is not None else None, ep.decision is not None if ep else False,
               pos, state.sim_ms if pos is not None else 0, getattr(self.app, "theme_name", ""))
        if sig == self._sig:
            return
        colors = getattr(self.app, "tones", {})
        first = self._sig == ()
        self._sig = sig
        self.query_one("#detail-title", Static).update(self._title(ep, pos, state, colors))
        self.query_one("#detail-decision", Static).update(self._decision(ep, colors))
        if first or sig[:4] != self._last_rows:
            self._last_rows = sig[:4]
            table = self.query_one("#detail-timeline", DataTable)
            table.clear()
            for i, e in enumerate(ep.events if ep is not None else ()):
                table.add_row(*event_cells(e, colors), key=str(i))
            d = ep.decision if ep is not None else None
            self.query_one("#detail-gates", KeyedTable).sync(gate_rows(d, colors))

    _last_rows: tuple[Any, ...] = ()

    def _title(self, ep: Episode | None, pos: Any, state: UiState, colors: dict[str, str]) -> Text:
        muted = colors.get("muted", "")
        t = Text(overflow="ellipsis")
        t.append(f" {short_symbol(self.symbol)} ", style="bold reverse")
        t.append(f" {self.profile} profile", style=colors.get(self.profile, ""))
        trade = ep.trade if ep is not None else None
        if trade is not None:
            pnl = float(trade.pnl)
            style = colors.get("profit", "") if pnl > 0 else colors.get("loss", "") if pnl < 0 else ""
            t.append(f" · closed trade #{ep.seq} · PnL " if ep is not None else " · PnL ")
            t.append(fmt.money(pnl, 4, sign=True), style=f"bold {style}")
            t.append(f" · fees {fmt.money(trade.fees, 4)}")
            held = trade.ts_ms - trade.opened_ms if trade.opened_ms and trade.ts_ms else None
            t.append(f"\n{trade.side} {fmt.amount(trade.contracts)} @ {fmt.price(trade.entry_price)} -> "
                     f"{fmt.price(trade.exit_price)} · held {fmt.duration_ms(held)} · exit: ")
            t.append(trade.reason or fmt.DASH, style="bold")
            t.append(f"\nopened {fmt.ts(trade.opened_ms) or fmt.DASH} · closed {fmt.ts(trade.ts_ms) or fmt.DASH}",
                     style=muted)
        elif pos is not None:
            pnl = float(pos.unrealized_pnl)
            style = colors.get("profit", "") if pnl > 0 else colors.get("loss", "") if pnl < 0 else ""
            t.append(" · open · uPnL ")
            t.append(fmt.money(pnl, 2, sign=True), style=f"bold {style}")
            t.append(f" · mark {fmt.price(pos.mark_price)}")
            stop = state.stop_trigger(pos.side, pos.symbol) or pos.stop_price
            age = fmt.duration_ms(state.sim_ms - pos.opened_ms) if pos.opened_ms and state.sim_ms else fmt.DASH
            t.append(f"\n{pos.side} {fmt.amount(pos.contracts)} @ {fmt.price(pos.entry_price)} · stop ")
            if stop is None:
                t.append("NONE", style=f"bold reverse {colors.get('loss', '')}")
            else:
                t.append(fmt.price(stop))
            t.append(f" · age {age}")
            t.append(f"\nopened {fmt.ts(pos.opened_ms) or fmt.DASH}", style=muted)
        else:
            t.append(" · no longer open" if ep is not None else " · not open", style=muted)
        if ep is None:
            t.append("\nno order, fill or stop of it reached this view yet (it may have been opened before "
                     "the app started)", style=muted)
        elif self.from_audit is not None and self.from_audit.events:
            t.append(f" · {len(self.from_audit.events)} earlier events from the audit trail", style=muted)
        elif ep.dropped:
            t.append(f" ({ep.dropped} older events not kept)", style=muted)
        return t

    def _decision(self, ep: Episode | None, colors: dict[str, str]) -> Text:
        t = Text(overflow="ellipsis")
        d = ep.decision if ep is not None else None
        if d is None:
            t.append("entry decision: not seen (the entry was placed before this view received decisions)",
                     style=colors.get("muted", ""))
            return t
        stamp = fmt.ts(getattr(d, "ts_ms", 0) or (ep.decision_ts if ep else 0))
        source = " (audit trail)" if getattr(d, "source", "") == "audit" else ""
        t.append(f"entry decision {stamp}{source}: ", style="bold")
        t.append_text(decision_summary(d, bool(getattr(d, "entry_valid", False)), colors))
        return t

    def action_chart(self) -> None:
        from .chart import open_chart

        open_chart(self.app, self.symbol)

    def action_switch_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        if tabs.active == "tab-timeline":
            tabs.active = "tab-gates"
            self.query_one("#detail-gates", KeyedTable).focus()
        else:
            tabs.active = "tab-timeline"
            self.query_one("#detail-timeline", DataTable).focus()


def audit_db(app: Any) -> Path | None:
    """The audit SQLite of the bot the app shows (live or paper, on this machine; an attached
    viewer learns it from the bot's hello), if there is one."""
    host = getattr(app, "host", None)
    remote = getattr(host, "audit_path", "")
    if remote:
        return Path(remote) if Path(remote).is_file() else None
    settings = getattr(host, "settings", None)
    mode = getattr(host, "mode", "")
    if settings is None or mode not in ("live", "paper"):
        return None
    from engine.store.audit_query import audit_db_path

    try:
        path = audit_db_path(settings.glob.data_dir, mode)
    except AttributeError:
        return None
    return path if path.is_file() else None


def open_detail(app: Any, profile: str, symbol: str, trade_seq: int | None = None) -> None:
    if isinstance(app.screen, DetailScreen) and app.screen.profile == profile and app.screen.symbol == symbol \
            and app.screen.trade_seq == trade_seq:
        return
    app.push_screen(DetailScreen(profile, symbol, trade_seq=trade_seq,
                                 audit_db=audit_db(app) if trade_seq is None else None))
