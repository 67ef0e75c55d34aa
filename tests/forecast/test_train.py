"""run_train end to end on a tiny store: candidate files, TensorBoard scalars, cutoff, reproducibility."""

import datetime
import json
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from pipeline import schemas as s
from pipeline.store import Store, StoreError, read_json
from pipeline.schemas import FORECAST
from recsys.forecast.forecaster import SegmentForecaster
from recsys.runs import create as create_run
from recsys.forecast.train import TrainError, run_train
from tests.conftest import LAST_DAY, make_tiny_daily, write_daily


def _epoch_losses(log_dir) -> list[float]:
    """The epoch_loss series Keras wrote (TF2 summaries are stored as tensors, not simple scalars)."""
    acc = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    acc.Reload()
    assert "epoch_loss" in acc.Tags()["tensors"], acc.Tags()
    events = acc.Tensors("epoch_loss")
    assert [e.step for e in events] == list(range(len(events)))
    return [float(tensor_util.make_ndarray(e.tensor_proto)) for e in events]


@pytest.mark.slow
def test_run_train_writes_candidate_and_tensorboard_logs(tiny_store):
    out = run_train(tiny_store, create_run(Store(tiny_store.store), "20240601T000000Z"))
    json.dumps(out)  # JSON-serialisable
    cutoff = LAST_DAY - datetime.timedelta(days=tiny_store.evaluate.holdout_days)
    assert out["run_id"] == "20240601T000000Z" and out["cutoff"] == str(cutoff)
    assert out["train_start"] == "2024-01-01" and out["n_segments"] == 3 and out["n_windows"] > 100
    assert 1 <= out["epochs_run"] <= tiny_store.model.epochs
    assert out["tensorboard"] == f"tensorboard --logdir {Path(tiny_store.store) / 'runs'}"
    cand = Path(tiny_store.store) / "models" / "runs" / "20240601T000000Z" / "forecast"
    assert out["forecast_dir"] == str(cand)
    assert sorted(p.name for p in cand.iterdir()) == ["combination.json", "config.json", "model.keras",
                                                      "recommender.json", "train.json"]
    weights = read_json(cand / "combination.json")["weights"]  # chosen per segment before the hold-out
    assert set(weights) <= {"a", "b", "c", "__default__"} and "__default__" in weights
    assert all(abs(sum(w.values()) - 1) < 1e-9 for w in weights.values())
    assert not [p for p in cand.parent.iterdir() if p.name.startswith(".")]  # no staging dir left
    train = read_json(cand / "train.json")
    assert train["cutoff"] == str(cutoff) and train["segments"] == ["a", "b", "c"]
    assert train["epochs_run"] == out["epochs_run"] and len(train["history"]["val_loss"]) == out["epochs_run"]
    assert train["rows"] == 150 + 130 + 150 - 3 * tiny_store.evaluate.holdout_days
    assert read_json(cand / "config.json")["model"]["horizon"] == tiny_store.model.horizon
    for split, key in (("train", "loss"), ("validation", "val_loss")):
        losses = _epoch_losses(Path(out["log_dir"]) / split)
        assert len(losses) == out["epochs_run"]
        np.testing.assert_allclose(losses, train["history"][key], rtol=1e-5)


def _accumulator(path) -> EventAccumulator:
    acc = EventAccumulator(str(path), size_guidance={"tensors": 0})
    acc.Reload()
    return acc


@pytest.mark.slow
def test_run_train_logs_learning_rate_histograms_forecast_image_and_hparams(tiny_store, hparams_of_run):
    out = run_train(tiny_store, create_run(Store(tiny_store.store), "tb-extras"))
    train = _accumulator(Path(out["log_dir"]) / "train")
    lr = [float(tensor_util.make_ndarray(e.tensor_proto)) for e in train.Tensors("epoch_learning_rate")]
    assert lr == pytest.approx([tiny_store.model.learning_rate] * out["epochs_run"])
    histograms = train.PluginTagToContent("histograms")
    assert any(tag.endswith("kernel/histogram") for tag in histograms), sorted(histograms)
    images = _accumulator(Path(out["log_dir"]) / "images")
    assert "forecast_vs_actual" in images.PluginTagToContent("images")
    final = images.Tensors("forecast_vs_actual")[-1]
    assert final.step == out["epochs_run"]  # the end-of-training image, after the last epoch
    width, height, png = tensor_util.make_ndarray(final.tensor_proto)[:3]
    assert png[:4] == b"\x89PNG"
    assert (int(width), int(height)) == (3 * 320, int(3.4 * 80))  # one 320 x 240 panel per segment (3)
    hparams = hparams_of_run(out["log_dir"])
    assert hparams["cell"] == "lstm" and hparams["units"] == tiny_store.model.units
    assert hparams["dropout"] == pytest.approx(tiny_store.model.dropout)


@pytest.mark.slow
def test_same_seed_gives_same_predictions_and_cutoff_is_respected(tiny_store, tiny_daily):
    cutoff = datetime.date(2024, 4, 30)
    first = run_train(tiny_store, create_run(Store(tiny_store.store), "one"), cutoff=cutoff)
    second = run_train(tiny_store, create_run(Store(tiny_store.store), "two"), cutoff=cutoff)
    assert first["cutoff"] == second["cutoff"] == "2024-04-30"
    one, two = (SegmentForecaster.load(r["forecast_dir"]) for r in (first, second))
    history = tiny_daily[tiny_daily[s.DATE] <= cutoff]
    np.testing.assert_allclose(one.predict(history)[FORECAST], two.predict(history)[FORECAST], rtol=1e-6)
    assert first["best_val_loss"] == pytest.approx(second["best_val_loss"], rel=1e-6)
    model_bytes = (Path(first["forecast_dir"]) / "model.keras").read_bytes()
    again = run_train(tiny_store, create_run(Store(tiny_store.store), "one"), cutoff=cutoff)  # a re-run of the same run id
    assert again["reused"] and again["forecast_dir"] == first["forecast_dir"]
    assert again["epochs_run"] == first["epochs_run"]
    assert (Path(first["forecast_dir"]) / "model.keras").read_bytes() == model_bytes


def test_run_train_without_daily_table_says_what_to_run(small_config):
    with pytest.raises(StoreError, match="run `trendrec aggregate` first"):
        run_train(small_config, create_run(Store(small_config.store), "x"))


def test_run_train_with_cutoff_before_the_data_is_refused(small_config):
    write_daily(small_config.store, make_tiny_daily(n_days=40))
    with pytest.raises(TrainError, match="no day on or before the cutoff"):
        run_train(small_config, create_run(Store(small_config.store), "x"), cutoff=datetime.date(2023, 1, 1))


@pytest.mark.slow
def test_a_diverged_run_fails_and_leaves_no_candidate_to_evaluate_or_push(tiny_store):
    import dataclasses

    from pipeline.store import Store
    from recsys.forecast.forecaster import ModelError

    cfg = dataclasses.replace(tiny_store, model=dataclasses.replace(tiny_store.model, learning_rate=1e30, epochs=2))
    with pytest.raises(ModelError, match="diverged"):  # TerminateOnNaN stopped it; run_train refuses the result
        run_train(cfg, create_run(Store(cfg.store), "nan"))
    run = Store(cfg.store).training_runs / "nan"
    assert not (run / "forecast").exists()  # nothing committed: evaluate finds no forecaster
    assert not [p for p in run.glob(".forecast.*") if p.name != ".forecast.backup"]


@pytest.mark.slow
def test_trendrec_train_prints_one_line_per_epoch_with_the_validation_loss(tiny_store, monkeypatch, capsys):
    """Without -v: 'epoch n/N: ... val_loss ...' on stderr, no Keras progress bar; the summary on stdout."""
    from recsys import cli

    monkeypatch.setattr(cli, "load_config", lambda path, store=None: tiny_store)
    assert cli.main(["train", "--run-id", "progress"]) == 0
    out, err = capsys.readouterr()
    epochs = read_json(Path(tiny_store.store) / "models" / "runs" / "progress" / "forecast" / "train.json")["epochs_run"]
    lines = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == [f"epoch {i}/{tiny_store.model.epochs}"
                                                      for i in range(1, epochs + 1)]
    assert all(" val_loss " in line and " loss " in line for line in lines), lines
    assert "step" not in err and "━" not in err  # no Keras progress bar
    assert "epoch 1/" not in out and "trained the segment forecaster" in out


def test_forecast_image_is_a_readable_grid_with_every_segment():
    """14 segments: 4 rows of 4 panels of 320 x 240 px, none dropped (it drew the 4 biggest in one strip)."""
    import io

    from matplotlib.image import imread

    from recsys.forecast.nn.callbacks import forecast_png, preview_windows

    class FakeWindows:  # the part of windows.Windows that preview_windows reads
        def __init__(self, segment):
            self.segment, self.first_target = np.asarray(segment), np.arange(len(segment))
            self.y = np.ones((len(segment), 7))

        def subset(self, rows):
            return FakeWindows(self.segment[rows])

        def inputs(self):
            return {"history": np.ones((len(self.segment), 14, 1))}

    names = [f"seg{i:02d}" for i in range(14)]
    scales = {name: float(i) for i, name in enumerate(names)}
    preview = preview_windows(FakeWindows(np.repeat(np.arange(14), 2)), names, scales)
    assert sorted(preview["names"]) == names and preview["names"][0] == "seg13"  # all, biggest first
    png = forecast_png(preview, np.ones((14, 7)), "end of training")
    height, width = imread(io.BytesIO(png)).shape[:2]
    assert (width, height) == (4 * 320, int((4 * 3.0 + 0.4) * 80))
