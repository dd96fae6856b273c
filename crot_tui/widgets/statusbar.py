"""The two status lines at the top: mode, progress, profiles, entries, equity, margin, regime."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from .. import fmt
from ..messages import AccountChanged, RegimeChanged, StatusChanged
from ..state import UiState


class StatusBar(Static):
    LISTENS = (StatusChanged, AccountChanged, RegimeChanged)

    def on_mount(self) -> None:
        listen = getattr(self.app, "listen", None)
        if listen is not None:
            listen(self)
            self.update_state(self.app.state)  # type: ignore[attr-defined]

    def on_unmount(self) -> None:
        unlisten = getattr(self.app, "unlisten", None)
        if unlisten is not None:
            unlisten(self)

    def on_status_changed(self, m: StatusChanged) -> None:
        self.update_state(m.state)

    def on_account_changed(self, m: AccountChanged) -> None:
        self.update_state(m.state)

    def on_regime_changed(self, m: RegimeChanged) -> None:
        self.update_state(m.state)

    def update_state(self, state: UiState) -> None:
        c = getattr(self.app, "tones", {})
        host = getattr(self.app, "host", None)
        mode = (getattr(host, "mode", "") or state.mode or "?").upper()
        profit, loss, warn, muted, accent = (c.get(k, "") for k in ("profit", "loss", "warn", "muted", "accent"))
        t = Text(no_wrap=True, overflow="ellipsis")
        badge = {"LIVE": f"bold reverse {loss}", "PAPER": f"bold reverse {warn}"}.get(mode, f"bold reverse {accent}")
        t.append(f" {mode} ", style=badge)
        p = state.progress
        if mode == "DEMO":
            if state.finished:
                t.append(f" {state.finished}", style=muted)
            elif p.total:
                t.append(f" {p.done * 100 // p.total:>3}%")
                if p.warming:
                    t.append(" warming up indicators", style=warn)
                elif host is not None and getattr(host, "playback_paused", False):
                    t.append(" playback paused", style=f"bold {warn}")
                elif host is not None:
                    speed = getattr(host, "speed", 0)
                    rate = p.rate()
                    if rate is None:
                        t.append(f" x{speed:g}/s" if speed else " max speed", style=muted)
                    else:  # what the replay really does, and the target when it falls short
                        t.append(f" {rate:.0f} candles/s", style=muted)
                        if not speed:
                            t.append(" (max)", style=muted)
                        elif rate < 0.9 * speed:
                            t.append(f" of x{speed:g}", style=warn)
        elif state.finished:
            t.append(f" {state.finished}", style=f"bold {loss}")
        if state.sim_ms:
            t.append(f"  {fmt.ts(state.sim_ms)} UTC", style=muted)
        regime = state.regime.regime if state.regime is not None else ""
        if regime:
            t.append("  regime ", style=muted)
            t.append(regime, style="bold")
        if state.errors:
            t.append(f"  {state.errors} error(s)", style=f"bold {loss}")
        t.append("\n")
        for side in ("long", "short"):
            on = state.enabled.get(side, False)
            t.append(f" {side.upper()} ", style="bold")
            t.append(" on " if on else " OFF ", style=f"bold {profit}" if on else f"bold reverse {loss}")
            t.append(" ")
        t.append(" entries ")
        if state.finished or (host is not None and getattr(host, "remote", False) and not getattr(host, "connected", True)):
            # the truth: nothing runs entries once the engine stopped or the viewer lost the bot
            t.append("stopped" if state.finished else "unknown: not connected", style=f"bold reverse {loss}")
        else:
            t.append("PAUSED" if state.paused else "running", style=f"bold reverse {warn}" if state.paused else profit)
        a = state.account
        if a is not None:
            t.append("  equity ", style=muted)
            t.append(fmt.money(a.equity))
            if state.start_equity:
                ch = float((a.equity - state.start_equity) / state.start_equity)
                t.append(f" {fmt.pct(ch, 2, sign=True)}", style=profit if ch > 0 else loss if ch < 0 else "")
            use = state.margin_use()
            t.append("  margin ", style=muted)
            t.append(fmt.pct(use, 1), style=warn if use and use > 0.3 else "")
        self.update(t)
