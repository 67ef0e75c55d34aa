"""`trendrec tune` on a tiny store: trials drawn as documented, files written, HParams readable."""

import datetime
import json
import tomllib
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util

from pipeline.config import load_config
from recsys.cli import main
from recsys.forecast.tune import SPACE, TuneError, run_tune, sample_configs
from tests.conftest import LAST_DAY, SMALL_MODEL, make_tiny_daily, write_daily

SMALL_TOML = """
[model]
lookback = 14
horizon = 7
units = 8
epochs = 2
batch_size = 32
patience = 2
val_days = 21
seed = 7
image_freq = 1
"""


def test_sample_configs_start_with_the_configured_model_and_are_distinct_and_seeded():
    configs = sample_configs(SMALL_MODEL, 5)
    assert configs[0] == SMALL_MODEL and len(configs) == 5
    points = [tuple(getattr(c, k) for k in SPACE) for c in configs]
    assert len(set(points)) == 5
    assert all(getattr(c, k) in SPACE[k] for c in configs[1:] for k in SPACE)
    assert sample_configs(SMALL_MODEL, 5) == configs  # same seed, same trials
    assert [c.horizon for c in configs] == [SMALL_MODEL.horizon] * 5  # only the searched keys change


def test_tune_refuses_zero_trials(small_config):
    with pytest.raises(TuneError, match="--trials must be >= 1"):
        run_tune(small_config, trials=0)


@pytest.mark.slow
def test_tune_cli_two_trials_writes_best_toml_trials_json_and_hparams(tmp_path, capsys, hparams_of_run):
    store = tmp_path / "store"
    write_daily(store, make_tiny_daily())
    config = tmp_path / "small.toml"
    config.write_text(SMALL_TOML)
    code = main(["tune", "--config", str(config), "--store", str(store), "--trials", "2", "--epochs", "1",
                 "--tune-id", "t1", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = json.loads(captured.out)  # exactly one JSON object on stdout
    assert out["trials"] == 2 and out["failed"] == 0 and out["best_trial"] in ("trial-00", "trial-01")
    assert captured.err.count("trial ") >= 2 and "trial 2/2 trial-01" in captured.err  # progress lines
    trials = json.loads((store / "tune" / "t1" / "trials.json").read_text())
    holdout = load_config(None).evaluate.holdout_days
    assert trials["cutoff"] == str(LAST_DAY - datetime.timedelta(days=holdout))  # hold-out never seen
    assert [t["trial"] for t in trials["trials"]] == ["trial-00", "trial-01"]
    assert all(t["epochs_run"] == 1 and t["val_mae"] > 0 for t in trials["trials"])
    best = tomllib.loads((store / "tune" / "t1" / "best.toml").read_text())["model"]
    assert set(best) == set(SPACE) and best == out["best"]
    cfg_with_best = tmp_path / "best.toml"  # the section pastes into a config that loads
    cfg_with_best.write_text((store / "tune" / "t1" / "best.toml").read_text())
    assert load_config(cfg_with_best).model.cell == best["cell"]
    runs = Path(out["log_dir"])
    assert runs == store / "runs" / "tune-t1"
    experiment = EventAccumulator(str(runs))
    experiment.Reload()
    data = plugin_data_pb2.HParamsPluginData.FromString(
        experiment.PluginTagToContent("hparams")["_hparams_/experiment"])
    assert {h.name for h in data.experiment.hparam_infos} == set(SPACE)
    assert {m.name.tag for m in data.experiment.metric_infos} == {"epoch_loss", "epoch_mae", "best_val_mae",
                                                                  "best_val_loss"}
    for record in trials["trials"]:
        hparams = hparams_of_run(runs / record["trial"])
        assert {k: hparams[k] for k in SPACE} == pytest.approx(record["params"])
        assert (runs / record["trial"] / "validation").is_dir()  # the metrics the dashboard compares
        trial = EventAccumulator(str(runs / record["trial"]), size_guidance={"tensors": 0})
        trial.Reload()
        best_mae = tensor_util.make_ndarray(trial.Tensors("best_val_mae")[-1].tensor_proto)
        assert float(best_mae) == pytest.approx(record["val_mae"], rel=1e-6)  # the score tune ranks by


@pytest.mark.parametrize("fails_at", ["trial", "trials.json"])
def test_a_failed_tune_leaves_no_folder_of_its_own(tiny_store, monkeypatch, fails_at):
    """A full disk after TensorFlow's summary writer made runs/tune-<id>/ (issue 31): the tune's folders go."""
    import errno

    from recsys.forecast import tune

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if fails_at == "trial":
        monkeypatch.setattr(tune, "_trial", full)
    else:
        monkeypatch.setattr(tune, "_trial", lambda *a, **k: {"trial": "trial-00", "params": {}, "val_mae": 1.0})
        monkeypatch.setattr(tune, "write_json", full)
    store = Path(tiny_store.store)
    (store / "runs" / "tune-other").mkdir(parents=True)  # another tune's folder stays
    with pytest.raises(OSError, match="No space left"):
        run_tune(tiny_store, trials=2, tune_id="t1")
    assert not (store / "runs" / "tune-t1").exists() and not (store / "tune" / "t1").exists()
    assert (store / "runs" / "tune-other").is_dir()
