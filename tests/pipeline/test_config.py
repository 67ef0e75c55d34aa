import dataclasses

import pytest

from pipeline.config import ConfigError, load_config
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
    ],
)
def test_bad_config_is_named(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
