"""`crot optimize`'s search space and walk-forward windows: validated against the settings
catalog (one-line errors naming the file, the key and what is expected), values suggested as
.env text, windows that never overlap their own test data. No replay runs here."""

from __future__ import annotations

import optuna
import pytest

from engine.research.cli import main
from engine.research.optimize import build_settings, check_conflicts, redact
from engine.research.space import EXAMPLE, SpaceError, parse_space
from engine.research.walkforward import DAY_MS, PROFIT_FACTOR_CAP, make_folds, objective_value, parse_objectives
from engine.runtime.replay_data import ReplayDataError, parse_timerange
from engine.settings import SettingsError


def space(params: str, study: str = "") -> str:
    return (f"[study]\n{study}\n" if study else "") + "[params]\n" + params + "\n"


@pytest.mark.parametrize(("params", "says"), [
    ("HARD_STOP_LOS_PCT = { low = 0.01, high = 0.02 }", ["HARD_STOP_LOS_PCT: not a setting", "did you mean HARD_STOP_LOSS_PCT"]),
    ("LONG_HARD_STOP_LOS_PCT = { low = 0.01, high = 0.02 }", ["did you mean LONG_HARD_STOP_LOSS_PCT"]),
    ("HARD_STOP_LOSS_PCT = { low = 0.01, high = 1.5 }", ["high 1.5 is outside the setting's bounds (> 0 and <= 1)"]),
    ("HARD_STOP_LOSS_PCT = { low = 0, high = 0.5 }", ["low 0 is outside the setting's bounds (> 0 and <= 1)"]),
    ("SHORT_LEVERAGE = { low = 1, high = 500 }", ["SHORT_LEVERAGE: high 500 is outside", "(>= 1 and <= 200)"]),
    ("LEVERAGE = { low = 1.5, high = 20 }", ["low = 1.5: expected a whole number"]),
    ("HARD_STOP_LOSS_PCT = { low = 0.03, high = 0.01 }", ["low 0.03 must be below high 0.01"]),
    ("HARD_STOP_LOSS_PCT = { low = 0.01, high = 0.03, step = 0.5 }", ["step 0.5 must be above 0 and at most"]),
    ("HARD_STOP_LOSS_PCT = { low = 0.01, high = 0.03, log = true, step = 0.01 }", ["log and step cannot be combined"]),
    ("EMA_LONG_MIN_RS60 = { low = -0.01, high = 0.01, log = true }", ["a log range needs low above 0"]),
    ("HARD_STOP_LOSS_PCT = { low = 0.01 }", ["a range needs both low and high"]),
    ("HARD_STOP_LOSS_PCT = { low = 0.01, high = 0.02, lo = 1 }", ["unknown option 'lo'"]),
    ("HARD_STOP_LOSS_PCT = 0.02", ["0.02: expected { low = .., high = .. }"]),
    ("EMA_TRIGGER_TIMEFRAME = { low = 1, high = 2 }", ["a choice setting takes choices, not a range", "one of: 1m"]),
    ("EMA_TRIGGER_TIMEFRAME = ['5m', '7m']", ["choice '7m'", "one of: 1m, 5m"]),
    ("SHORT_EMA_STRATEGY_ENABLED = [true, true]", ["choice true is listed twice"]),
    ("HARD_STOP_LOSS_PCT = []", ["choices must be a non-empty list"]),
    ("LONG_DRY_RUN = [true, false]", ["DRY_RUN is a process-wide setting and cannot be searched per side; use DRY_RUN"]),
    ("HTX_API_KEY = ['a', 'b']", ["HTX_API_KEY: a secret cannot be searched"]),
])
def test_bad_params_are_one_line_errors_naming_the_key(params, says):
    with pytest.raises(SpaceError) as e:
        parse_space(space(params), "my.toml")
    msg = str(e.value)
    assert msg.startswith("my.toml: [params] ") and "\n" not in msg, msg
    for s in says:
        assert s in msg, msg


@pytest.mark.parametrize(("text", "says"), [
    ("[study]\ntrials = 5\n", "no [params] table"),
    ("[params]\n", "no [params] table"),
    ("[parms]\nX = 1\n", "unknown table or key 'parms'"),
    ("[study]\nfoldz = 2\n[params]\nLEVERAGE = [5, 10]\n", "[study] foldz: unknown; expected one of: objectives"),
    ("[study]\nfolds = 0\n[params]\nLEVERAGE = [5, 10]\n", "[study] folds = 0: expected a whole number (at least 1)"),
    ("[study]\nobjectives = 'sharpe'\n[params]\nLEVERAGE = [5, 10]\n", "expected a list of objective names"),
    ("[params\n", "not valid TOML"),
])
def test_bad_files(text, says):
    with pytest.raises(SpaceError) as e:
        parse_space(text, "s.toml")
    assert says in str(e.value) and "\n" not in str(e.value)


def test_the_example_is_a_valid_space_and_values_come_back_as_env_text():
    sp = parse_space(EXAMPLE)
    assert "HARD_STOP_LOSS_PCT" in sp.keys and sp.study["objectives"] == ["sharpe", "drawdown"]
    parse_objectives(sp.study["objectives"])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(20):
        trial = study.ask()
        values = {p.key: p.suggest(trial) for p in sp.params}
        settings = build_settings({}, values)  # every suggestion is a value the catalog accepts
        stop = float(values["HARD_STOP_LOSS_PCT"])
        assert 0.01 <= stop <= 0.03 and round((stop - 0.01) / 0.0025, 9).is_integer()
        assert len(values["HARD_STOP_LOSS_PCT"]) <= 6  # 0.0175, not 0.017499999999999998
        assert settings.side("long").hard_stop_loss_pct == stop
        assert values["SHORT_EMA_STRATEGY_ENABLED"] in ("true", "false")
        assert settings.side("short").ema_strategy_enabled is (values["SHORT_EMA_STRATEGY_ENABLED"] == "true")
        assert settings.side("long").ema_strategy_enabled is True  # the SHORT_ key touches one side only
        study.tell(trial, 0.0)


def test_side_prefixed_keys_and_choices_of_list_settings():
    sp = parse_space(space("LONG_HARD_STOP_LOSS_PCT = { low = 0.01, high = 0.02 }\n"
                           "EMA_LADDER_FRACTIONS = { choices = ['1.0', '0.5,0.5'] }\n"
                           "EMA_TRIGGER_TIMEFRAME = ['5m', '15m']\nLEVERAGE = { low = 5, high = 20, step = 5 }"))
    kinds = {p.key: p.kind for p in sp.params}
    assert kinds == {"LONG_HARD_STOP_LOSS_PCT": "float", "EMA_LADDER_FRACTIONS": "choice",
                     "EMA_TRIGGER_TIMEFRAME": "choice", "LEVERAGE": "int"}
    trial = optuna.trial.FixedTrial({"LONG_HARD_STOP_LOSS_PCT": 0.015, "EMA_LADDER_FRACTIONS": "0.5,0.5",
                                     "EMA_TRIGGER_TIMEFRAME": "15m", "LEVERAGE": 10})
    values = {p.key: p.suggest(trial) for p in sp.params}
    assert values == {"LONG_HARD_STOP_LOSS_PCT": "0.015", "EMA_LADDER_FRACTIONS": "0.5,0.5",
                      "EMA_TRIGGER_TIMEFRAME": "15m", "LEVERAGE": "10"}


def test_a_combination_that_breaks_a_cross_field_rule_is_a_settings_error():
    with pytest.raises(SettingsError) as e:
        build_settings({}, {"ENTRY_MIN_SCORE": "0.09"})  # above ENTRY_CROWDED_MIN_SCORE 0.04
    assert "ENTRY_CROWDED_MIN_SCORE" in str(e.value)


def test_a_searched_shared_key_that_the_env_overrides_per_side_is_refused():
    sp = parse_space(space("HARD_STOP_LOSS_PCT = { low = 0.01, high = 0.02 }"), "s.toml")
    check_conflicts(sp, {"LEVERAGE": "10", "HARD_STOP_LOSS_PCT": "0.02"})  # the shared key itself: searched over
    with pytest.raises(SpaceError) as e:
        check_conflicts(sp, {"SHORT_HARD_STOP_LOSS_PCT": "0.02"})
    assert "your .env sets SHORT_HARD_STOP_LOSS_PCT" in str(e.value) and "search SHORT_HARD_STOP_LOSS_PCT" in str(e.value)


# ----------------------------------------------------------------------------------- walk-forward
def test_folds_roll_forward_and_never_test_on_their_training_days():
    start, end = parse_timerange("20240724-20240809")
    folds = make_folds(start, end, 3, 4, 2)
    assert folds[-1].test_end == end and folds[0].train_start >= start
    for f in folds:
        assert f.train_end == f.test_start and f.train_end - f.train_start == 4 * DAY_MS
        assert f.test_end - f.test_start == 2 * DAY_MS
    assert [f.test_start for f in folds] == [end - 6 * DAY_MS, end - 4 * DAY_MS, end - 2 * DAY_MS]
    auto = make_folds(start, end, 2, None, None)  # 16 days: train 8, test 4
    assert [(f.train_end - f.train_start) // DAY_MS for f in auto] == [8, 8]
    assert [(f.test_end - f.test_start) // DAY_MS for f in auto] == [4, 4] and auto[0].train_start == start


def test_windows_that_do_not_fit_are_a_one_line_error():
    start, end = parse_timerange("20240801-20240804")
    with pytest.raises(ReplayDataError) as e:
        make_folds(start, end, 2, 2, 1)
    assert "holds 3 whole days; 2 fold(s) of 2 training and 1 test days need 4" in str(e.value)


def test_objectives_and_their_values():
    assert parse_objectives("Sharpe, drawdown") == ("sharpe", "drawdown")
    for bad, says in (("sharp", "'sharp' is not an objective"), ("pnl,pnl", "names one twice"), ("", "none given")):
        with pytest.raises(ReplayDataError, match=says):
            parse_objectives(bad)
    assert objective_value("profit_factor", {"profit_factor": "inf"}) == PROFIT_FACTOR_CAP
    assert objective_value("profit_factor", {"profit_factor": None}) == 0.0  # no trade
    assert objective_value("profit_factor", {"profit_factor": 1.5}) == 1.5
    assert objective_value("sharpe", {"sharpe": None}) == 0.0
    assert objective_value("drawdown", {"max_drawdown_pct": 3.5}) == 3.5


def test_storage_urls_are_shown_without_their_password():
    assert redact("postgresql://crot:s3cret@db.lan:5432/optuna") == "postgresql://crot:***@db.lan:5432/optuna"
    assert redact("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


# ----------------------------------------------------------------------------------- the command
def test_the_command_reports_a_bad_space_in_one_line(tmp_path, capsys):
    bad = tmp_path / "s.toml"
    bad.write_text(space("HARD_STOP_LOSS_PCT = { low = 0.01, high = 2 }"))
    code = main(["optimize", "run", str(bad)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "s.toml: [params] HARD_STOP_LOSS_PCT: high 2 is outside the setting's bounds (> 0 and <= 1)" in err
    code = main(["optimize", "run", str(tmp_path / "missing.toml")])
    out, err = capsys.readouterr()
    assert code == 2 and "no such file (write one from: crot optimize example)" in err


@pytest.mark.parametrize(("args", "says"), [
    (["--objectives", "sortino"], "'sortino' is not an objective"),
    (["--symbols", "BTC,XRP"], "XRP not recorded"),
    (["--timerange", "20240801-20240803", "--folds", "2"], "holds 2 whole days"),
    (["--study", "bad name"], "--study 'bad name': use letters"),
    (["--storage", "redis://x"], "expected sqlite:///FILE"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text(space("LEVERAGE = [5, 10]", 'symbols = ["SOL"]'))
    code = main(["optimize", "run", "s.toml", *args])
    out, err = capsys.readouterr()
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and says in err, err
    assert not (tmp_path / "optimize").exists() or args[0] == "--storage"


def test_a_missing_database_driver_is_named(tmp_path, capsys, monkeypatch):
    try:
        import MySQLdb  # noqa: F401
        pytest.skip("a MySQL driver is installed here")
    except ImportError:
        pass
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text(space("LEVERAGE = [5, 10]", 'symbols = ["SOL"]\ntimerange = "20240801-20240804"'))
    code = main(["optimize", "run", "s.toml", "--folds", "1", "--storage", "mysql://u:pw@localhost/x"])
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "pw@" not in err
    assert "the database driver is not installed (pip install PyMySQL and write the URL as mysql+pymysql://" in err


def test_example_prints_and_writes_but_never_over_a_file(tmp_path, capsys):
    assert main(["optimize", "example"]) == 0
    assert capsys.readouterr().out == EXAMPLE
    target = tmp_path / "space.toml"
    assert main(["optimize", "example", "--write", str(target)]) == 0
    assert target.read_text() == EXAMPLE
    target.write_text("mine")
    capsys.readouterr()
    assert main(["optimize", "example", "--write", str(target)]) == 2
    assert "the file exists" in capsys.readouterr().err and target.read_text() == "mine"


def test_without_optuna_the_command_says_what_to_install(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else real(name, *a))
    for args in (["run", str(tmp_path / "s.toml")], ["report", "--study", "x"]):
        assert main(["optimize", *args]) == 2
        err = capsys.readouterr().err
        assert "need Optuna: pip install 'crot[research]'" in err and err.count("\n") == 1


def test_a_setting_not_yet_in_effect_cannot_be_searched(monkeypatch):
    """(Every setting is in effect today: one is marked planned for the test.)"""
    from dataclasses import replace

    from engine.settings import by_key

    monkeypatch.setitem(by_key(), "BTC_HEDGE_RATIO", replace(by_key()["BTC_HEDGE_RATIO"], planned=True))
    with pytest.raises(SpaceError) as e:
        parse_space(space("BTC_HEDGE_RATIO = { low = 0.5, high = 1.0 }"), "my.toml")
    assert "BTC_HEDGE_RATIO: not yet in effect in CROT" in str(e.value)
