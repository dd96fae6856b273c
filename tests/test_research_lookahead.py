"""`crot optimize lookahead`: the real strategy makes the same decisions when the data after a
point is removed; a feature that peeks one candle ahead is caught (exit 1, naming the
decision and the value that changed). And the cut itself keeps exactly what was known."""

from __future__ import annotations

import bisect
import dataclasses
import gzip
from pathlib import Path

import pytest

from engine.market.feeds import FileFeed, read_candles_csv, read_funding_csv
from engine.research.cli import main
from engine.research.lookahead import cut_folder
from engine.runtime.replay import DEMO_DATA
from engine.strategy.features import FeatureEngine

ARGS = ["optimize", "lookahead", "--symbols", "BTC,SOL", "--timerange", "20240802-20240803", "--cuts", "3"]


def test_the_strategy_has_no_look_ahead(capsys):
    code = main(ARGS)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.count("same decisions") == 3
    assert "no look-ahead: 3 cuts in 2024-08-02 00:00 .. 2024-08-03 00:00 UTC, BTC,SOL" in out
    decisions = int(out.split("; ")[-1].split(" decisions")[0])
    assert decisions > 1000  # every profile, symbol and candle up to each cut was compared


@pytest.fixture
def peeking_feature(monkeypatch):
    """A deliberately leaky feature: the trigger EMA replaced by the NEXT candle's close, read
    from the replay's data files (as a bug reading a whole dataframe would)."""
    loaded: dict[str, FileFeed] = {}
    original_load = FileFeed.from_directory.__func__
    original_build = FeatureEngine._build

    def load(cls, directory, *args, **kwargs):
        feed = original_load(cls, directory, *args, **kwargs)
        if Path(directory).name != "reference":
            loaded["feed"] = feed
        return feed

    def build(self, st):
        f = original_build(self, st)
        history = loaded["feed"].history(st.symbol)
        i = bisect.bisect_right([c.ts_ms for c in history], st.ts)
        return dataclasses.replace(f, trigger_fast=history[i].close) if i < len(history) else f

    monkeypatch.setattr(FileFeed, "from_directory", classmethod(load))
    monkeypatch.setattr(FeatureEngine, "_build", build)


def test_a_feature_that_peeks_one_candle_ahead_is_caught(capsys, peeking_feature):
    code = main(ARGS)
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert out.count("CHANGED") == 3  # at every cut: the decision at the cut saw the next candle
    lines = [ln for ln in err.splitlines() if ln.startswith("look-ahead: with the data cut at")]
    assert len(lines) == 3, err
    for ln in lines:
        cut = ln.split("cut at ")[1].split(" UTC")[0]
        assert f"decision on BTC/USDT:USDT at {cut} UTC changed" in ln or f"on SOL/USDT:USDT at {cut} UTC changed" in ln
        assert "with all the data" in ln and "without the later data" in ln
    assert "look-ahead found at 3 of 3 cuts" in err


def test_bad_input_is_a_one_line_error(capsys):
    code = main(["optimize", "lookahead", "--symbols", "XRP"])
    _, err = capsys.readouterr()
    assert code == 2 and "XRP not recorded" in err and err.count("\n") == 1
    code = main(["optimize", "lookahead", "--timerange", "2024"])
    _, err = capsys.readouterr()
    assert code == 2 and "expected START-END" in err


def test_the_cut_keeps_only_what_was_known_and_copies_values_unchanged(tmp_path):
    cut = 1722600000000  # 2024-08-02 12:00 UTC
    cut_folder(DEMO_DATA, tmp_path, cut)
    for name in ("SOL_USDT_USDT-5m-futures.csv", "reference/SOL_USDT_USDT-5m-futures.csv", "PAXG_USDT-5m.csv"):
        kept, full = read_candles_csv(tmp_path / name), read_candles_csv(DEMO_DATA / f"{name}.gz")
        assert kept == [c for c in full if c.ts_ms + 300_000 <= cut] and kept
    funding = read_funding_csv(tmp_path / "SOL_USDT_USDT-8h-funding_rate.csv")
    assert funding == [e for e in read_funding_csv(DEMO_DATA / "SOL_USDT_USDT-8h-funding_rate.csv.gz") if e[0] < cut]
    with gzip.open(DEMO_DATA / "BTC_USDT_USDT-5m-futures.csv.gz", "rt") as fh:
        text = fh.read().splitlines()
    assert (tmp_path / "BTC_USDT_USDT-5m-futures.csv").read_text().splitlines() == \
        [text[0]] + [ln for ln in text[1:] if int(ln.split(",")[0]) + 300_000 <= cut]
    assert (tmp_path / "replay.env").read_text() == (DEMO_DATA / "replay.env").read_text()
