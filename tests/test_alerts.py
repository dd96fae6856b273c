"""Alerts (engine/alerts/): engine events -> rules -> rate limit -> Apprise -> a loopback receiver.

The receiver is a real HTTP server on 127.0.0.1 and the alerts travel through Apprise's
`json://` service, so what is asserted is what a webhook would receive.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from decimal import Decimal as D

import pytest
from aiohttp import web

from engine.alerts import AlertConfig, AlertRouter, AlertRules, AlertsError, AppriseSender, check_alerts, start_alerts
from engine.exchange.errors import REDACTED, register_secret
from engine.runtime.events import (
    Account, EngineStatus, ErrorEvent, EventBus, Positions, Repair, StopEvent, TradeClosed,
)
from engine.settings.fields import GROUP_TITLES, describe_field
from engine.settings.groups.alerts import ALERT_KINDS, DEFAULT_KINDS, AlertsGlobalSettings

T0 = 1_722_556_800_000  # 2024-08-02 00:00 UTC
MIN = 60_000
SYM = "BTC/USDT:USDT"


class Receiver:
    """A webhook on 127.0.0.1 that keeps every JSON body it gets."""

    def __init__(self) -> None:
        self.got: list[dict] = []
        self.paths: list[str] = []
        self.status = 200
        self.delay = 0.0
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _hook(self, request: web.Request) -> web.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.paths.append(request.path)
        self.got.append(await request.json())
        return web.json_response({"ok": self.status == 200}, status=self.status)

    async def start(self) -> "Receiver":
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def titles(self) -> list[str]:
        return [p["title"] for p in self.got]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def receiver():
    r = await Receiver().start()
    yield r
    await r.stop()


def dead_url() -> str:
    """A loopback port nobody listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"json://127.0.0.1:{port}/hook"


def router_for(url: str, **kw) -> tuple[AlertRouter, EventBus]:
    g = AlertsGlobalSettings(alert_urls=url, **kw)
    bus = EventBus()
    router = start_alerts(g, bus, mode="live", clock_ms=None)
    assert router is not None
    return router, bus


def stop_missing(ts: int, symbol: str = SYM, profile: str = "long") -> StopEvent:
    return StopEvent(ts, profile, symbol, "missing", D("60000"), D("2"),
                     "no confirmed stop (rejected), attempt 1; closing reduce-only in 600 s unless a stop is confirmed")


def trade(ts: int, reason: str, pnl: str = "-12.5", symbol: str = SYM) -> TradeClosed:
    return TradeClosed(ts, "long", symbol, "long", D("61000"), D("59800"), D("2"), D(pnl), D("0.8"),
                       ts - 90 * MIN, reason)


# -- what arrives at the receiver ---------------------------------------------------------------

async def test_operator_events_arrive_as_apprise_json(receiver):
    router, bus = router_for(receiver.url("hook/path"))
    bus.publish(EngineStatus(T0, "live", ("long",), False, "live mode: warm, trading 3 symbols"))
    bus.publish(stop_missing(T0 + 1000))
    bus.publish(stop_missing(T0 + 4000))  # every cycle while it lasts: said once
    bus.publish(Repair(T0 + 7000, "long", SYM, "position without a confirmed stop",
                       "stop confirmed after 2 attempt(s), 6 s unprotected"))
    bus.publish(trade(T0 + 60 * MIN, "stop_loss"))
    bus.publish(trade(T0 + 61 * MIN, "unprotected", symbol="ETH/USDT:USDT"))
    bus.publish(trade(T0 + 62 * MIN, "take_profit", pnl="4"))  # trade_closed is off by default
    bus.publish(EngineStatus(T0 + 63 * MIN, "live", (), True,
                             "stopped by AuthError: [htx 403] bad key; stop-loss orders stay on the exchange"))
    assert await router.aclose(10)

    assert receiver.paths == ["/hook/path"] * 6
    assert receiver.titles() == [
        "CROT live: engine started",
        f"CROT live: {SYM} (long) has no stop-loss",
        f"CROT live: {SYM} (long) protected again",
        f"CROT live: stop-loss filled on {SYM} (long)",
        "CROT live: ETH/USDT:USDT (long) closed by unprotected",
        "CROT live: engine stopped by an error",
    ]
    types = [p["type"] for p in receiver.got]
    assert types == ["info", "failure", "success", "warning", "warning", "failure"]
    assert "attempt 1" in receiver.got[1]["message"] and "2024-08-02 00:00 UTC" in receiver.got[1]["message"]
    assert "PnL -12.50 USDT after 0.80 fees" in receiver.got[3]["message"]
    assert "stop-loss orders stay on the exchange" in receiver.got[5]["message"]
    assert router.stats.sent == 6 and router.stats.failed == 0


async def test_a_missing_stop_is_said_again_after_it_was_fixed(receiver):
    router, bus = router_for(receiver.url())
    bus.publish(stop_missing(T0))
    bus.publish(StopEvent(T0 + 3000, "long", SYM, "placed", D("60000"), D("2"), "protect"))
    bus.publish(stop_missing(T0 + 6000))
    bus.publish(StopEvent(T0 + 9000, "long", SYM, "emergency_close", D("60000"), D("2"),
                          "no confirmed stop for 600 s (3 attempt(s)): closing reduce-only at market"))
    bus.publish(StopEvent(T0 + 12000, "long", SYM, "emergency_close", D("60000"), D("2"), "still closing"))
    assert await router.aclose(10)
    assert [t.split(": ", 1)[1] for t in receiver.titles()] == [
        f"{SYM} (long) has no stop-loss", f"{SYM} (long) has no stop-loss", f"{SYM} (long) closed at market"]
    assert receiver.got[2]["type"] == "failure"


async def test_rate_limit_per_kind_and_the_count_of_held_back_alerts(receiver):
    router, bus = router_for(receiver.url(), alert_rate_limit_count=2, alert_rate_limit_minutes=10)
    for i in range(5):
        bus.publish(ErrorEvent(T0 + i * 1000, "bug", f"KeyError: 'k{i}'"))
    bus.publish(stop_missing(T0 + 6000))  # another kind has its own budget
    bus.publish(ErrorEvent(T0 + 11 * MIN, "bug", "KeyError: 'later'"))  # the window has passed
    assert await router.aclose(10)

    errors = [p["message"] for p in receiver.got if "unexpected error" in p["title"]]
    assert len(errors) == 3
    assert "'k0'" in errors[0] and "'k1'" in errors[1]
    assert "'later'" in errors[2] and "3 more engine_error alert(s) held back by the rate limit" in errors[2]
    assert sum("no stop-loss" in t for t in receiver.titles()) == 1
    assert router.stats.suppressed == 3 and router.stats.sent == 4


async def test_kinds_not_chosen_are_not_sent(receiver):
    router, bus = router_for(receiver.url(), alert_kinds="stop_missing")
    bus.publish(EngineStatus(T0, "live", ("long",), False, "live mode: warm, trading 3 symbols"))
    bus.publish(ErrorEvent(T0 + 1, "bug", "KeyError: 'x'"))
    bus.publish(stop_missing(T0 + 2))
    assert await router.aclose(10)
    assert len(receiver.got) == 1 and "no stop-loss" in receiver.got[0]["title"]


# -- secrets --------------------------------------------------------------------------------------

async def test_a_secret_in_an_error_never_reaches_the_receiver(receiver, caplog):
    api_secret = "tok-ALERTSECRET-7f3a9c21"
    register_secret(api_secret)  # as the exchange client does with the API key and secret
    url_token = "Wh00kT0ken5ecret42"
    caplog.set_level(logging.DEBUG)
    router, bus = router_for(receiver.url(f"hook/{url_token}"))
    bus.publish(ErrorEvent(T0, "bug",
                           f"NetworkError: GET https://api.hbdm.com/linear-swap-api/v1/x?AccessKeyId=AKIDvisible99"
                           f"&Signature=sigvisible77 failed; body={{'apiKey': '{api_secret}'}} "
                           f"Authorization: Bearer bearervisible55"))
    assert await router.aclose(10)

    sent = repr(receiver.got)
    assert len(receiver.got) == 1 and REDACTED in receiver.got[0]["message"]
    for leak in (api_secret, "AKIDvisible99", "sigvisible77", "bearervisible55"):
        assert leak not in sent
    assert receiver.paths == [f"/hook/{url_token}"]  # the URL itself works ...
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "JSON POST URL" in logged  # (Apprise did log its request line at DEBUG)
    assert url_token not in logged and api_secret not in logged  # ... and is never logged


def test_alert_urls_is_a_secret_setting_and_never_rendered():
    info = describe_field("alert_urls", AlertsGlobalSettings.model_fields["alert_urls"])
    assert info.key == "ALERT_URLS" and info.secret and info.scope == "global"
    g = AlertsGlobalSettings(alert_urls="tgram://123456789:AAHfakeTokenValue/42")
    assert "AAHfake" not in repr(g) and "AAHfake" not in str(g.model_dump())


def test_a_bad_url_is_a_one_line_error_without_the_url():
    with pytest.raises(AlertsError) as e:
        AppriseSender(f"{dead_url()}, nonsense://S3cretPart1234")
    msg = str(e.value)
    assert "ALERT_URLS item 2 (scheme 'nonsense')" in msg and "\n" not in msg and "S3cretPart1234" not in msg
    g = AlertsGlobalSettings(alert_urls="tgram://notatoken")
    assert "ALERT_URLS item 1 (scheme 'tgram')" in (check_alerts(g) or "")
    assert check_alerts(AlertsGlobalSettings()) is None
    assert check_alerts(AlertsGlobalSettings(alert_urls=dead_url())) is None


def test_alert_settings_validate():
    g = AlertsGlobalSettings()
    assert g.alert_kinds == DEFAULT_KINDS and "trade_closed" not in g.alert_kinds
    assert AlertsGlobalSettings(alert_kinds="Stop_Missing, engine_crashed").alert_kinds == \
        ("stop_missing", "engine_crashed")
    for bad in ({"alert_kinds": "stopmissing"}, {"alert_rate_limit_count": 0},
                {"alert_daily_summary_hour_utc": 24}, {"alert_unreachable_minutes": 0}):
        with pytest.raises(ValueError):
            AlertsGlobalSettings(**bad)
    assert set(DEFAULT_KINDS) < set(ALERT_KINDS)


def test_every_alert_setting_is_documented_like_the_others():
    for name, f in AlertsGlobalSettings.model_fields.items():
        info = describe_field(name, f)
        assert info.key.startswith("ALERT_") and info.scope == "global", name
        assert info.description and len(info.description) <= 160, name
        assert info.group in GROUP_TITLES, name


def _settings_with_alerts(env: str):
    """The loaded settings, through the .env parser once the group is registered."""
    from engine.settings.envfile import parse_lines
    from engine.settings.loader import settings_from_assignments
    from engine.settings.model import SIDES, GlobalSettings, ProfileSettings, Settings

    if issubclass(GlobalSettings, AlertsGlobalSettings):
        assignments, errors = parse_lines(env.splitlines())
        assert not errors
        return settings_from_assignments(assignments)
    glob = type("G", (GlobalSettings, AlertsGlobalSettings), {})  # until registered in GLOBAL_GROUPS
    values = dict(line.split("=", 1) for line in env.splitlines())
    return Settings(glob(**{k.lower(): v for k, v in values.items()}), {s: ProfileSettings() for s in SIDES})


async def test_start_alerts_takes_the_loaded_settings(receiver):
    settings = _settings_with_alerts(f"ALERT_URLS={receiver.url()}\nALERT_TITLE_PREFIX=bot-7\n"
                                     "ALERT_KINDS=engine_crashed")
    bus = EventBus()
    router = start_alerts(settings, bus, mode="paper")
    assert router is not None and router.config.mode == "paper"
    bus.publish(EngineStatus(T0, "paper", (), True, "stopped by RuntimeError: boom; stop-loss orders stay"))
    assert await router.aclose(10)
    assert receiver.titles() == ["bot-7 paper: engine stopped by an error"]


def test_no_router_without_urls_or_in_a_replay():
    bus = EventBus()
    assert start_alerts(AlertsGlobalSettings(), bus) is None
    url = dead_url()
    assert start_alerts(AlertsGlobalSettings(alert_urls=url), bus, mode="replay") is None
    assert start_alerts(AlertsGlobalSettings(alert_urls=url, alert_replay=True), bus, mode="replay") is not None
    with pytest.raises(AlertsError):
        start_alerts(object(), bus)  # settings without the ALERT_ group


# -- the engine never waits and never breaks --------------------------------------------------------

async def test_a_dead_receiver_does_not_stop_the_event_flow():
    router, bus = router_for(dead_url(), alert_rate_limit_count=100)
    seen: list[str] = []
    bus.subscribe(lambda ev: seen.append(ev.kind))
    for i in range(20):
        bus.publish(ErrorEvent(T0 + i, "bug", f"KeyError: {i}"))
        bus.publish(Account(T0 + i, D(1000), D(900), D(100), D(0), D(0), D(0)))
    assert len(seen) == 40  # every event reached the next subscriber
    assert await router.aclose(20)
    assert router.stats.failed == 20 and router.stats.sent == 0


async def test_a_slow_or_failing_receiver_is_waited_for_by_nobody(receiver):
    receiver.delay = 1.0
    router, bus = router_for(receiver.url(), alert_send_timeout_sec=0.3)
    seen: list[str] = []
    bus.subscribe(lambda ev: seen.append(ev.kind))
    bus.publish(ErrorEvent(T0, "bug", "KeyError: 'slow'"))
    bus.publish(Account(T0 + 1, D(1000), D(900), D(100), D(0), D(0), D(0)))
    assert seen == ["error", "account"] and router.pending == 1  # published, not sent yet
    assert await router.aclose(5)
    assert router.stats.failed == 1  # given up after the send timeout

    receiver.delay, receiver.status = 0.0, 500
    router, bus = router_for(receiver.url())
    bus.publish(ErrorEvent(T0, "bug", "KeyError: 'refused'"))
    assert await router.aclose(10)
    assert router.stats.failed == 1 and router.stats.sent == 0


async def test_a_full_queue_drops_the_oldest_alerts_and_counts_them(receiver):
    router = AlertRouter(AlertConfig(frozenset(ALERT_KINDS), rate_limit_count=100, summary_hour_utc=-1),
                         AppriseSender(receiver.url()), queue_size=2)
    bus = EventBus()
    router.attach(bus)
    for i in range(5):  # published in one go: the sender gets no chance in between
        bus.publish(ErrorEvent(T0 + i, "bug", f"KeyError: 'q{i}'"))
    assert await router.aclose(10)
    assert [p["message"].split("\n")[0] for p in receiver.got] == ["KeyError: 'q3'", "KeyError: 'q4'"]
    assert router.stats.dropped == 3 and router.stats.sent == 2


async def test_the_wall_clock_tick_reports_an_outage_while_no_event_comes(receiver):
    now = {"ms": T0}
    router = AlertRouter(AlertConfig(frozenset(ALERT_KINDS), unreachable_ms=5 * MIN, summary_hour_utc=-1),
                         AppriseSender(receiver.url()), clock_ms=lambda: now["ms"], tick_s=0.02)
    bus = EventBus()
    router.attach(bus)
    bus.publish(ErrorEvent(T0, "start", "cannot connect to HTX (NetworkError: timed out); retrying in 60 s"))
    await asyncio.sleep(0.1)
    assert receiver.got == []
    now["ms"] = T0 + 6 * MIN  # the engine is stuck in its retry pause: nothing is published
    for _ in range(200):
        if receiver.got:
            break
        await asyncio.sleep(0.02)
    assert await router.aclose(10)
    assert [p["title"] for p in receiver.got] == ["CROT live: exchange unreachable for 6 min"]


async def test_the_replay_runs_to_the_end_with_alerts_to_a_dead_receiver():
    from crot_tui.testing import FAST_STEPS, fast_settings
    from engine.runtime.replay import DEMO_SYMBOLS, run_replay

    bus = EventBus()
    kinds: list[str] = []
    bus.subscribe(lambda ev: kinds.append(ev.kind))
    router = AlertRouter(AlertConfig(frozenset(ALERT_KINDS), mode="replay", send_timeout_s=2),
                         AppriseSender(dead_url())).attach(bus)
    summary = await run_replay(fast_settings(), symbols=DEMO_SYMBOLS, bus=bus, max_steps=FAST_STEPS)
    assert summary.steps == FAST_STEPS and kinds.count("account") == FAST_STEPS
    assert await router.aclose(10)
    assert router.stats.failed >= 1 and router.stats.sent == 0  # alerts were due, none could go


# -- rules over time: an outage, the daily summary ---------------------------------------------------

def rules(**kw) -> AlertRules:
    return AlertRules(AlertConfig(frozenset(ALERT_KINDS), **kw))


def test_unreachable_only_after_n_minutes_of_consecutive_failures():
    r = rules(unreachable_ms=5 * MIN, summary_hour_utc=-1)
    out = []
    for m in range(4):  # 4 minutes of failures, then the account is read again: no alert
        out += r.on_event(ErrorEvent(T0 + m * MIN, "step", "NetworkError: timed out"))
    out += r.on_event(Account(T0 + 4 * MIN, D(1000), D(900), D(100), D(0), D(0), D(0)))
    assert out == []
    for m in range(5, 12):
        out += r.on_event(ErrorEvent(T0 + m * MIN, "step", "ExchangeTimeout: read timed out"))
    assert [a.kind for a in out] == ["exchange_unreachable"]  # once, at 5 minutes
    assert out[0].ts_ms == T0 + 10 * MIN and "for 5 min" in out[0].title
    assert "ExchangeTimeout: read timed out" in out[0].body
    back = r.on_event(Account(T0 + 13 * MIN, D(1000), D(900), D(100), D(0), D(0), D(0)))
    assert [a.kind for a in back] == ["exchange_recovered"] and "8 min" in back[0].body
    # a quiet engine (no events at all) is caught by the tick
    r.on_event(ErrorEvent(T0 + 20 * MIN, "start", "cannot connect to HTX (NetworkError)"))
    assert [a.kind for a in r.tick(T0 + 26 * MIN)] == ["exchange_unreachable"]


def test_daily_summary_at_the_configured_utc_hour():
    r = rules(summary_hour_utc=8)
    acct = lambda ts, eq: Account(ts, D(eq), D(900), D(100), D(0), D(0), D(0))  # noqa: E731
    assert r.on_event(acct(T0 + 60 * MIN, "1000")) == []
    r.on_event(trade(T0 + 2 * 60 * MIN, "stop_loss", pnl="-10"))
    r.on_event(trade(T0 + 3 * 60 * MIN, "take_profit", pnl="25.5"))
    r.on_event(Positions(T0 + 3 * 60 * MIN, "long", ()))
    r.on_event(ErrorEvent(T0 + 4 * 60 * MIN, "reference", "MEXC down"))
    r.counted("stop_filled")
    r.counted("suppressed")
    assert r.on_event(acct(T0 + 8 * 60 * MIN - 1000, "1015.5")) == []  # 07:59:59
    out = r.on_event(acct(T0 + 8 * 60 * MIN + 3000, "1015.5"))  # 08:00:03
    assert [a.kind for a in out] == ["daily_summary"]
    body = out[0].body
    assert "equity 1,015.50 USDT (+15.50)" in body
    assert "trades closed 2 (1 won, 1 lost or even), realised PnL +15.50 USDT" in body
    assert "closed by: stop_loss 1, take_profit 1" in body and "open positions: long 0" in body
    assert "errors 1" in body and "alerts sent 1, suppressed by the rate limit 1" in body
    assert r.tick(T0 + 20 * 60 * MIN) == []  # once a day
    nxt = r.tick(T0 + 32 * 60 * MIN)  # the next day, 08:00
    assert [a.kind for a in nxt] == ["daily_summary"] and "trades closed 0" in nxt[0].body
    assert rules(summary_hour_utc=-1).tick(T0 + 48 * 60 * MIN) == []


def test_other_repairs_and_engine_errors():
    r = rules(summary_hour_utc=-1)
    out = r.on_event(Repair(T0, "short", "ETH/USDT:USDT", "position without state",
                            "adopted; stop from the fixed distance, ladder re-planned"))
    out += r.on_event(Repair(T0, "long", SYM, "position without a confirmed stop", "no confirmed stop ..."))
    out += r.on_event(ErrorEvent(T0, "auth", "[htx 403] bad key", fatal=True))
    out += r.on_event(ErrorEvent(T0, "reference", "MEXC unavailable"))  # not for the operator's phone
    out += r.on_event(EngineStatus(T0, "live", (), True, "stopped; stop-loss orders stay on the exchange"))
    assert [a.kind for a in out] == ["repair", "engine_error", "engine_stopped"]
    assert "position without state -> adopted" in out[0].body and out[2].level == "warning"


# -- wired into the host that runs live and paper (the UI and --no-ui) --------------------------

async def test_the_host_sends_alerts_while_live_runs_and_drains_them_after(receiver, monkeypatch):
    import crot_tui.host as host_mod

    settings = _settings_with_alerts(f"ALERT_URLS={receiver.url()}\nALERT_KINDS=stop_missing,engine_crashed")
    seen: list[str] = []

    async def fake_run_live(settings, *, bus, paper, stop, on_engine):
        seen.append("paper" if paper else "live")
        bus.publish(stop_missing(T0))
        bus.publish(EngineStatus(T0, "paper", (), True, "stopped by RuntimeError: boom; stop-loss orders stay"))
        raise RuntimeError("boom")

    monkeypatch.setattr(host_mod, "load_live_runner", lambda: fake_run_live)
    host = host_mod.EngineHost(settings, mode="paper")
    result = await host.run()
    assert seen == ["paper"] and result.error and "boom" in result.error
    # Both arrived before run() returned: the router is drained in the host's finally.
    titles = receiver.titles()
    assert len(titles) == 2 and any("stop" in t and "BTC" in t for t in titles), titles
    assert any(t.endswith("paper: engine stopped by an error") for t in titles), titles


def test_config_check_rejects_an_alert_url_apprise_cannot_use(tmp_path, capsys):
    from engine.cli import main

    env = tmp_path / ".env"
    env.write_text("ALERT_URLS=nosuchscheme://token-abc123/x\n")
    env.chmod(0o600)
    assert main(["config", "check", "--env", str(env)]) == 2
    err = capsys.readouterr().err
    assert "ALERT_URLS" in err and "token-abc123" not in err and len(err.strip().splitlines()) == 1


def test_the_summary_hour_and_the_outage_time_come_from_the_settings():
    from settings_effect import settings

    def from_env(**env) -> AlertRules:
        return AlertRules(AlertConfig.from_settings(settings(**env).glob, "live"))

    acct = lambda ts: Account(ts, D(1000), D(900), D(100), D(0), D(0), D(0))  # noqa: E731
    for hour in (8, 10):
        r = from_env() if hour == 8 else from_env(ALERT_DAILY_SUMMARY_HOUR_UTC=hour)
        r.on_event(acct(T0 + 60 * MIN + 7_117))
        sent = [(m, a.kind) for m in range(2 * 60, 12 * 60, 60) for a in r.on_event(acct(T0 + m * MIN + 3_001))]
        assert sent == [(hour * 60, "daily_summary")]
    for minutes in (5, 2):
        r = from_env(ALERT_DAILY_SUMMARY_HOUR_UTC=-1) if minutes == 5 else \
            from_env(ALERT_DAILY_SUMMARY_HOUR_UTC=-1, ALERT_UNREACHABLE_MINUTES=minutes)
        out = [(m, a.kind) for m in range(8) for a in r.on_event(ErrorEvent(T0 + m * MIN + 913, "step", "timed out"))]
        assert out == [(minutes, "exchange_unreachable")]
