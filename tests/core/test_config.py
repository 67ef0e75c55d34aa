import dataclasses
from pathlib import Path

import pytest

from pipeline.config import DEFAULTS, ConfigError, load_config, locate_config
from tests.conftest import DEMO_CONFIG


def test_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None)
    assert cfg.store == str(tmp_path / "trendrec-data")
    assert cfg.model.horizon == 14 and cfg.model.cell == "lstm"


def test_demo_file_resolves_paths_against_itself():
    cfg = load_config(DEMO_CONFIG)
    assert cfg.source == str(DEMO_CONFIG.parent / "data" / "demo" / "online_retail.parquet")
    assert cfg.ingest.columns["event_time"] == "InvoiceDate"
    assert cfg.ingest.segment_rules[0][0] == "christmas"


def test_store_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("TRENDREC_STORE", str(tmp_path / "env"))
    assert load_config(DEMO_CONFIG).store == str(tmp_path / "env")
    assert load_config(DEMO_CONFIG, store=str(tmp_path / "flag")).store == str(tmp_path / "flag")


def test_config_is_frozen():
    cfg = load_config(None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.model.units = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "text, message",
    [
        ("[model]\nunits = 'many'\n", "model.units: expected int"),
        ("[model]\nsize = 3\n", "unknown key(s) size"),
        ("[model]\nscaling = 'max'\n", "model.scaling must be one of mean, naive"),
        ("[model]\nloss = 'mse'\n", "model.loss must be one of huber, mae"),
        ("[model]\nbase_statistic = 'mode'\n", "model.base_statistic must be one of mean, median"),
        ("[ingest]\nreturns = 'maybe'\n", "ingest.returns"),
        ("[ingest.columns]\nshoe_size = 'x'\n", "unknown field"),
        ("[model\n", "invalid TOML"),
        ("[model]\ncell = 'rnn'\n", "model.cell must be one of lstm, gru, peephole, got 'rnn'"),
        ("[model]\ndistribute = 'tpu'\n", "model.distribute must be one of none, mirrored"),
        ("[model]\nquantiles = 0.5\n", "model.quantiles: expected a list"),
        ("[model]\nlevel_exponents = [0, 3]\n", "model.level_exponents must be numbers"),
        ("[model]\nquantiles = [0.1, 0.9]\n", "include 0.5"),
        ("[model]\nquantiles = [0.9, 0.5, 0.1]\n", "must be increasing"),
        ("[model]\nquantiles = [0.125, 0.5]\n", "at most two decimals"),
        ("[model]\nimage_freq = -1\n", "model.image_freq must be >= 0"),
        ("[model]\nyear_ago_min_share = -0.5\n", "model.year_ago_min_share must be >= 0"),
        ("[customers]\nvalidation_customers = -1\n", "customers.validation_customers must be >= 0"),
        ("[customers]\njudge_customers = -1\n", "customers.judge_customers must be >= 0"),
    ],
)
def test_bad_config_is_named(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(path)


def test_model_options_from_toml(tmp_path):
    path = tmp_path / "q.toml"
    path.write_text("[model]\ncell = 'peephole'\nquantiles = [0.1, 0.5, 0.9]\ndistribute = 'mirrored'\n")
    model = load_config(path).model
    assert (model.cell, model.quantiles, model.distribute) == ("peephole", (0.1, 0.5, 0.9), "mirrored")
    assert load_config(None).model.quantiles == () and load_config(None).model.distribute == "none"


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_customer_model_section_from_toml(tmp_path):
    """[customers] configures the LSTMRecommender; its defaults live in pipeline.config only."""
    path = tmp_path / "c.toml"
    path.write_text('[customers]\nunits = 32\ncell = "gru"\nn_candidates = 50\n')
    cfg = load_config(path)
    assert (cfg.customers.units, cfg.customers.cell, cfg.customers.n_candidates) == (32, "gru", 50)
    assert cfg.customers.lookback_weeks == 52 and cfg.to_dict()["customers"]["units"] == 32
    path.write_text('[customers]\ncell = "peephole"\n')
    with pytest.raises(ConfigError, match="customers.cell"):
        load_config(path)
    path.write_text('[customers]\nunknown_key = 1\n')
    with pytest.raises(ConfigError, match="customers: unknown key"):
        load_config(path)


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_env_store_is_refused_not_replaced_by_the_config_store(monkeypatch, value):
    monkeypatch.setenv("TRENDREC_STORE", value)
    with pytest.raises(ConfigError, match=r"\$TRENDREC_STORE is set but empty"):
        load_config(DEMO_CONFIG)


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_env_config_is_refused_not_replaced_by_the_defaults(monkeypatch, value):
    monkeypatch.setenv("TRENDREC_CONFIG", value)
    with pytest.raises(ConfigError, match=r"^\$TRENDREC_CONFIG is set but empty: give the config file") as err:
        load_config()
    assert "\n" not in str(err.value)
    assert load_config(DEMO_CONFIG).ingest.columns  # a file given explicitly does not read the variable


@pytest.mark.parametrize("zone, closest", [
    ("Europe/Berln", "'Europe/Berlin'"), ("europe/berlin", "'Europe/Berlin'"),
    ("America/New York", "'America/New_York'"), ("Mars/Olympus", 'e.g. "Europe/Berlin" or "UTC"'),
])
def test_a_misspelt_timezone_is_a_config_error_with_the_closest_names(tmp_path, zone, closest):
    path = tmp_path / "shop.toml"
    path.write_text(f'[ingest]\ntimezone = "{zone}"\n')
    with pytest.raises(ConfigError, match=f"^ingest.timezone: unknown time zone '{zone}'; ") as err:
        load_config(path)
    assert closest in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("zone", ["Europe/Berlin", "UTC", "utc", "+01:00", "Etc/GMT-1"])
def test_valid_timezones_load(tmp_path, zone):
    path = tmp_path / "shop.toml"
    path.write_text(f'[ingest]\ntimezone = "{zone}"\n')
    assert load_config(path).ingest.timezone == zone


def test_a_misspelt_timezone_stops_the_cli_in_one_line_before_reading(tmp_path, capsys):
    from recsys.cli import main

    path = tmp_path / "shop.toml"
    path.write_text('store = "st"\n[ingest]\ntimezone = "Europe/Berln"\n')
    assert main(["ingest", str(tmp_path / "e.csv"), "--config", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("trendrec ingest: error: ingest.timezone: unknown time zone 'Europe/Berln'; did you mean "
                          "'Europe/Berlin'") and "\n" not in err
    assert not (tmp_path / "st").exists()


# --- which file: locate_config (the CLI's lookup) and load_config(None) (the library's) -------------------
def test_locate_config_prefers_the_flag_then_the_nearest_file_then_the_variable(tmp_path, monkeypatch):
    inner = tmp_path / "shop" / "sub"
    inner.mkdir(parents=True)
    monkeypatch.setenv("TRENDREC_CONFIG", str(DEMO_CONFIG))
    assert locate_config("other.toml", cwd=inner) == (Path("other.toml"), "--config")
    assert locate_config(None, cwd=inner) == (DEMO_CONFIG, "$TRENDREC_CONFIG")
    (tmp_path / "shop" / "trendrec.toml").write_text("")  # a parent's file wins over the variable
    assert locate_config(None, cwd=inner) == (tmp_path / "shop" / "trendrec.toml", "found from the working directory")
    (inner / "trendrec.toml").write_text("")  # the nearest one
    assert locate_config(None, cwd=inner)[0] == inner / "trendrec.toml"
    monkeypatch.delenv("TRENDREC_CONFIG")
    assert locate_config(None, cwd=tmp_path) == (None, DEFAULTS)


def test_locate_config_refuses_an_empty_variable_even_when_a_file_is_found(tmp_path, monkeypatch):
    (tmp_path / "trendrec.toml").write_text("")
    monkeypatch.setenv("TRENDREC_CONFIG", "")
    with pytest.raises(ConfigError, match="TRENDREC_CONFIG is set but empty"):
        locate_config(None, cwd=tmp_path)


def test_load_config_none_means_the_variable_or_the_defaults_never_a_file_of_the_working_directory(
        tmp_path, monkeypatch):
    (tmp_path / "trendrec.toml").write_text("[model]\nunits = 3\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(None).model.units != 3  # finding files is the CLI's (locate_config), not the library's
    monkeypatch.setenv("TRENDREC_CONFIG", str(tmp_path / "trendrec.toml"))
    assert load_config(None).model.units == 3
