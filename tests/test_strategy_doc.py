"""docs/STRATEGY.md stays in step with the code: the generator's output, the gate pipeline, the
averaging checks and the settings catalog."""

import re
from pathlib import Path

import pytest

from engine.cli import main
from engine.runtime.engine import Engine
from engine.runtime.events import EventBus
from engine.settings import Settings, by_key, catalog
from engine.settings import strategy_doc as sd
from engine.settings.envfile import parse_lines
from engine.settings.loader import settings_from_assignments
from engine.strategy import EntryContext, SymbolFeatures, evaluate, select_entries

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "STRATEGY.md"
SYM = "ETH/USDT:USDT"
TS = 1_720_000_200_000


@pytest.fixture(scope="module")
def generated() -> str:
    return sd.strategy_doc()


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text()


def _pipeline(settings: Settings, side: str) -> list[str]:
    """Gate names of one decision as the running engine makes it (built here on its own, not
    through the generator, so a generator that stops asking the pipeline is caught too)."""
    engine = Engine(settings, None, None, EventBus(), symbols=[SYM])
    extra = engine._extra_gates(side, TS, {})[SYM]
    f = SymbolFeatures.neutral_benchmark(TS, SYM)
    d = evaluate(side, f, f, settings.side(side), extra)
    sel = select_entries([d], EntryContext(now_ms=TS), settings.side(side))
    return list(sel.decisions[0].gate_names)


def _doc_gates(text: str) -> list[str]:
    section = text.split("## Entry gates in pipeline order", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| \d+ \| `([a-z0-9_]+)` \|", section, re.M)


def _settings(text: str) -> Settings:
    assignments, errors = parse_lines(text.splitlines())
    assert not errors
    return settings_from_assignments(assignments)


def test_strategy_doc_is_in_sync(doc, generated):
    assert doc == generated, "regenerate with: crot config strategy --write docs/STRATEGY.md"


@pytest.mark.parametrize("side", ["long", "short"])
@pytest.mark.parametrize("env", [
    "",
    "EXTERNAL_PRICE_ENABLED=false\n",
    "EMA_USE_RS_CONFIRMATION=false\nEMA_USE_BTC_RISK_FILTER=false\nEMA_CHOP_FILTER_ENABLED=false\n"
    "EMA_VOLUME_CONFIRMATION_ENABLED=false\nENTRY_SPREAD_FILTER_ENABLED=false\n",
    "EMA_ENTRY_REQUIRE_PULLBACK_RECOVERY=true\nEXTERNAL_PRICE_ENTRY_FILTER_ENABLED=true\n"
    "EXTERNAL_PRICE_DISABLE_TRADING_IF_REFERENCE_STALE=true\nENABLE_GOLD_BTC_RSI_OVERLAY=false\n",
])
def test_every_pipeline_gate_is_in_the_document_in_order(doc, side, env):
    names = _pipeline(_settings(env), side)
    listed = _doc_gates(doc)
    missing = [n for n in names if n not in listed]
    assert not missing, f"gates of the pipeline missing from docs/STRATEGY.md: {missing}"
    assert listed == names, "docs/STRATEGY.md lists the gates in another order than the pipeline"


def test_generator_reads_the_pipeline_and_refuses_an_undocumented_gate(monkeypatch):
    assert [g.name for g in sd.pipeline_gates()] == _pipeline(Settings.defaults(), "long")
    gates = dict(sd.GATES)
    del gates["min_score"]
    monkeypatch.setattr(sd, "GATES", gates)
    with pytest.raises(ValueError, match="min_score"):
        sd.strategy_doc()


def test_generator_refuses_a_documented_gate_the_pipeline_lacks(monkeypatch):
    monkeypatch.setattr(sd, "GATES", {**sd.GATES, "no_such_gate": ("hard", "x", ())})
    with pytest.raises(ValueError, match="no_such_gate"):
        sd.strategy_doc()


def test_averaging_checks_and_sizing_limits_are_listed_in_code_order(doc):
    section = doc.split("## Averaging", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^\| \d+ \| `([a-z0-9_]+)` \|", section, re.M) == list(sd.averaging_check_names())
    section = doc.split("## Sizing and the entry ladder", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^\| `([a-z0-9_]+)` \|", section, re.M) == list(sd.sizing_limit_names())


def test_every_named_setting_exists(doc):
    keys = by_key()
    tables = (sd.GATES.values(), ((w, k) for w, k in sd.AVERAGING_CHECKS.values()),
              ((w, k) for w, k in sd.SIZING_LIMITS.values()))
    for rows in tables:
        for row in rows:
            for key in row[-1]:
                assert key in keys, key
    named = set(re.findall(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`", doc))
    assert named, "no setting named"
    assert sorted(named - set(keys)) == []


def test_settings_tables_cover_the_strategy_groups_and_mark_planned(doc):
    section = doc.split("## Settings by group", 1)[1]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([A-Z0-9_]+)` \|.*$", section, re.M)}
    groups = set(sd.strategy_groups())
    assert {"signal", "entry", "sizing", "averaging", "exits", "macro", "reference"} <= groups
    for info in catalog():
        if info.group not in groups:
            assert info.key not in rows
            continue
        assert info.key in rows, info.key
        assert ("Not yet in effect" in rows[info.key]) == info.planned, info.key
    # a planned setting shown with its default in the prose or a gate table says so too
    before = doc.split("## Settings by group", 1)[0]
    for key, marked in re.findall(r"`([A-Z][A-Z0-9_]+)` = (?:`[^`]*`|\*empty\*)( \(not yet in effect\))?", before):
        assert bool(marked) == by_key()[key].planned, key


def test_defaults_in_the_document_follow_the_catalog(generated):
    text = generated.split("## Settings by group", 1)[0]
    shown = re.findall(r"`([A-Z][A-Z0-9_]+)` = (`[^`]*`|\*empty\*)", text)
    assert len(shown) > 100
    for key, value in shown:
        default = sd._default(by_key()[key])
        assert value == (f"`{default}`" if default else "*empty*"), key


def test_cli_prints_and_writes_the_document(tmp_path, capsys, generated):
    out = tmp_path / "STRATEGY.md"
    assert main(["config", "strategy", "--write", str(out)]) == 0
    assert out.read_text() == generated
    assert main(["config", "strategy"]) == 0
    assert capsys.readouterr().out.endswith(generated)
