"""Issue 5, figure 1: the public LSTM load benchmark, measured without the published leak.

The data (``../shared/data/load/load.csv``, see its PROVENANCE.md) is one year of electrical load
at 15-minute steps, 365 days x 96 slots, flattened row by row to 35,040 points. A window of 96
points (one day) predicts the next point. Train on points [0, 28032), validate (early stopping) on
[28032, 31536), test on the last 701 points [34339, 35040): the windows whose inputs and target
all lie in the test span, 605 predictions. The scaler is fitted on the training points only and
MAPE is divided by the actual value; the published figures (R² 0.9941, MAPE 1.25 %) scaled the test
split by its own min / max and divided MAPE by the prediction.

The network forecasts the change from the last value (a residual on persistence): its output
layer starts at zero, so training starts from the persistence forecast, and early stopping on the
validation span keeps the best epoch. Inputs per step are the level (standardised with the
training mean and std), its change since the previous step, and the time of day and weekday on
the unit circle. The recurrent layers follow ``recsys.forecast.forecaster``'s conventions (LSTM or GRU, tanh /
sigmoid, ``recurrent_dropout=0`` so the fused cuDNN kernel is used on a GPU, dropout between
layers, AdamW, ``keras.utils.set_random_seed``) and windows are strided views
(``sliding_window_view``) as in ``recsys.forecast.nn.windows``. The product's ``SegmentForecaster`` does not fit
this problem: it reads a daily (segment, date) table, scales by a segment's mean and uses month /
weekday of dates, while this is one series of 15-minute points forecast one step ahead. Its
``build_model`` can be fed by hand (lookback 96, horizon 1, ``season_skip=1`` = persistence, one
segment); measured once, seed 0: MAPE 0.650 % after all 30 epochs in 241 s, against 0.620 % in
116 s here: on the mean scale the next step's change is about 1 % of the input, so it learns slowly.

Printed: R², MAE, RMSE and MAPE per seed and as mean ± std over the seeds, the persistence
baseline (previous value) on the same 605 targets, and the training time of each seed. With
``--published``, also the published model (2 x LSTM(10, relu), Dense(10, relu), Adam(0.01), MSE,
batch 512, 30 epochs), trained on min-max-scaled levels fitted on the training points only.

    .venv/bin/python benchmarks/forecast_load.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("forecast_load")

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "load" / "load.csv"
WINDOW = 96  # input points per window: one day of 15-minute slots
SLOTS = 96  # 15-minute slots per day (columns of the table)
TRAIN, VAL, TEST = (0, 28032), (28032, 31536), (34339, 35040)  # [start, stop) point spans
TEST_PREDICTIONS = 605  # windows of TEST whose inputs and target all lie in it
PUBLISHED = {"r2": 0.9941, "mae": 83.94, "rmse": 114.42, "mape": 1.25}


@dataclass(frozen=True)
class Series:
    """The flattened load and, per point, its 15-minute slot (0..95) and weekday (0=Mon..6=Sun)."""

    load: np.ndarray  # (35040,) float64
    slot: np.ndarray  # (35040,) int
    weekday: np.ndarray  # (35040,) int


@dataclass(frozen=True)
class Windows:
    """Inputs (n, WINDOW, channels) float32, the last input value and the target, original scale."""

    x: np.ndarray
    last: np.ndarray
    y: np.ndarray


def read_series(path: Path) -> Series:
    """load.csv (YMD + 96 slot columns, one row per day) flattened row by row; exits if invalid."""
    import pandas as pd

    if not path.is_file():
        sys.exit(f"{path} not found: the load benchmark needs load.csv from ../shared/data/load "
                 f"(see its PROVENANCE.md), or pass --data PATH")
    table = pd.read_csv(path, encoding="utf-8-sig")  # the file starts with a BOM
    if table.shape[1] != 1 + SLOTS or table.columns[0] != "YMD":
        sys.exit(f"{path}: expected columns YMD + {SLOTS} slots, got {table.shape[1]} starting "
                 f"{list(table.columns[:2])}")
    values = table.iloc[:, 1:].to_numpy(dtype=np.float64)
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        row, col = bad[0]
        sys.exit(f"{path}: non-finite load at row {row + 2}, column {table.columns[col + 1]}")
    days = pd.to_datetime(table["YMD"].astype(str), format="%Y%m%d")
    weekday = np.repeat(days.dt.day_of_week.to_numpy(), SLOTS)
    return Series(values.reshape(-1), np.tile(np.arange(SLOTS), len(table)), weekday)


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """R², MAE, RMSE and MAPE (%, divided by the actual value) on the original scale."""
    err = y - pred
    return {"r2": float(1 - np.sum(err**2) / np.sum((y - y.mean()) ** 2)),
            "mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err**2))),
            "mape": float(100 * np.mean(np.abs(err) / np.abs(y)))}


@dataclass(frozen=True)
class Scale:
    """Statistics of the training points only: level mean and std, std of the one-step change."""

    mean: float
    std: float
    step: float

    @classmethod
    def fit(cls, load: np.ndarray) -> Scale:
        train = load[TRAIN[0]:TRAIN[1]]
        return cls(float(train.mean()), float(train.std()), float(np.diff(train).std()))


def point_features(series: Series, scale: Scale) -> np.ndarray:
    """(points, 6) float32: level, change since the previous point, time-of-day and weekday cycles."""
    change = np.diff(series.load, prepend=series.load[0]) / scale.step
    day = 2 * np.pi * series.slot / SLOTS
    week = 2 * np.pi * series.weekday / 7
    level = (series.load - scale.mean) / scale.std
    return np.stack([level, change, np.sin(day), np.cos(day), np.sin(week), np.cos(week)],
                    axis=1).astype(np.float32)


def make_windows(features: np.ndarray, load: np.ndarray, span: tuple[int, int]) -> Windows:
    """Every window whose WINDOW inputs and target all lie in ``span``, as strided views."""
    from numpy.lib.stride_tricks import sliding_window_view

    start, stop = span
    x = sliding_window_view(features[start:stop - 1], WINDOW, axis=0)  # (n, channels, WINDOW)
    y = load[start + WINDOW:stop]
    return Windows(np.ascontiguousarray(np.moveaxis(x, 1, 2)), load[start + WINDOW - 1:stop - 1], y)


def build_network(channels: int, args: argparse.Namespace):
    """Stacked LSTM / GRU over the window; a zero-initialised head outputs the scaled next change."""
    import keras

    cell = keras.layers.LSTM if args.cell == "lstm" else keras.layers.GRU
    inputs = keras.Input((WINDOW, channels), name="window")
    x = inputs
    for i in range(args.layers):
        x = cell(args.units, activation="tanh", recurrent_activation="sigmoid", recurrent_dropout=0.0,
                 unroll=False, return_sequences=i < args.layers - 1, name=f"{args.cell}_{i}")(x)
        x = keras.layers.Dropout(args.dropout, name=f"dropout_{i}")(x)
    change = keras.layers.Dense(1, kernel_initializer="zeros", name="change")(x)
    model = keras.Model(inputs, change, name="load_residual")
    model.compile(optimizer=keras.optimizers.AdamW(args.lr, weight_decay=args.weight_decay), loss="mse")
    return model


def train_residual(seed: int, data: dict[str, Windows], scale: Scale,
                   args: argparse.Namespace) -> tuple[np.ndarray, float, int]:
    """Test predictions (original scale), training seconds and epochs run for one seed."""
    import keras

    keras.backend.clear_session()  # a fresh graph per seed: no retracing, same names every run
    keras.utils.set_random_seed(seed)
    model = build_network(data["train"].x.shape[2], args)
    target = {k: ((w.y - w.last) / scale.step)[:, None].astype(np.float32) for k, w in data.items()}
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.patience,
                                         restore_best_weights=True)
    started = time.perf_counter()
    hist = model.fit(data["train"].x, target["train"], validation_data=(data["val"].x, target["val"]),
                     epochs=args.epochs, batch_size=args.batch_size, shuffle=True, verbose=0,
                     callbacks=[keras.callbacks.TerminateOnNaN(), stop])
    seconds = time.perf_counter() - started
    test = data["test"]
    # A direct call, not predict(): predict() builds a tf.function per model, and TF warns of retracing
    change = keras.ops.convert_to_numpy(model(test.x, training=False))[:, 0].astype(np.float64)
    return test.last + change * scale.step, seconds, len(hist.history["loss"])


def train_published(seed: int, series: Series, epochs: int) -> tuple[np.ndarray, float]:
    """The published network on min-max-scaled levels (min / max of the training points only)."""
    import keras

    keras.backend.clear_session()  # a fresh graph per seed: no retracing, same names every run
    keras.utils.set_random_seed(seed)
    train = series.load[TRAIN[0]:TRAIN[1]]
    lo, hi = float(train.min()), float(train.max())
    scaled = ((series.load - lo) / (hi - lo)).astype(np.float32)[:, None]
    data = {k: make_windows(scaled, series.load, span) for k, span in (("train", TRAIN), ("test", TEST))}
    model = keras.Sequential([keras.Input((WINDOW, 1)), keras.layers.LSTM(10, activation="relu",
                              return_sequences=True), keras.layers.LSTM(10, activation="relu"),
                              keras.layers.Dense(10, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    y_train = ((data["train"].y - lo) / (hi - lo)).astype(np.float32)
    started = time.perf_counter()
    model.fit(data["train"].x, y_train, batch_size=512, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - started
    pred = keras.ops.convert_to_numpy(model(data["test"].x, training=False))[:, 0].astype(np.float64)
    return pred * (hi - lo) + lo, seconds


def _line(name: str, s: dict[str, float], extra: str = "") -> str:
    return (f"  {name:<22} R² {s['r2']:.5f}  MAE {s['mae']:7.2f}  RMSE {s['rmse']:7.2f}  "
            f"MAPE {s['mape']:.3f} %{extra}")


def _summary(name: str, runs: list[dict[str, float]]) -> str:
    parts = []
    for key, fmt in (("r2", ".5f"), ("mae", ".2f"), ("rmse", ".2f"), ("mape", ".3f")):
        vals = np.array([r[key] for r in runs])
        parts.append(f"{key.upper().replace('R2', 'R²')} {vals.mean():{fmt}} ± {vals.std():{fmt}}")
    return f"  {name:<22} " + "  ".join(parts) + " %"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="load.csv (365 rows x 96 slots)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30, help="upper bound; early stopping ends sooner")
    parser.add_argument("--cell", choices=("lstm", "gru"), default="lstm")
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate")
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--published", action="store_true", help="also train the published model")
    parser.add_argument("--published-epochs", type=int, default=30)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    series = read_series(args.data)
    scale = Scale.fit(series.load)
    features = point_features(series, scale)
    data = {k: make_windows(features, series.load, span)
            for k, span in (("train", TRAIN), ("val", VAL), ("test", TEST))}
    test = data["test"]
    if len(test.y) != TEST_PREDICTIONS:  # the count: a check of the target indexing
        sys.exit(f"expected {TEST_PREDICTIONS} test windows in points {TEST}, got {len(test.y)}")
    print(f"load benchmark: {len(series.load)} points, windows train {len(data['train'].y)}, "
          f"val {len(data['val'].y)}, test {len(test.y)}; scaler fitted on points {TRAIN}")
    print(_line("persistence", scores(test.y, test.last)))
    print(_line("published (leaky)", PUBLISHED) + "  (test scaled by its own min/max, MAPE / prediction)")
    _run_residual(data, scale, args)
    if args.published:
        _run_published(series, args)


def _run_residual(data: dict[str, Windows], scale: Scale, args: argparse.Namespace) -> None:
    print(f"residual {args.cell.upper()} x{args.layers} ({args.units} units), leak-free:")
    runs, base = [], scores(data["test"].y, data["test"].last)
    for seed in args.seeds:
        pred, seconds, epochs = train_residual(seed, data, scale, args)
        runs.append(scores(data["test"].y, pred))
        worse = " WORSE THAN PERSISTENCE" if runs[-1]["mae"] > base["mae"] else ""
        print(_line(f"seed {seed}", runs[-1], f"  train {seconds:.0f} s, {epochs} epochs{worse}"), flush=True)
    print(_summary(f"mean ± std ({len(runs)})", runs))


def _run_published(series: Series, args: argparse.Namespace) -> None:
    print(f"published model (2 x LSTM(10, relu), {args.published_epochs} epochs), leak-free:")
    y = series.load[TEST[0] + WINDOW:TEST[1]]
    runs = []
    for seed in args.seeds:
        pred, seconds = train_published(seed, series, args.published_epochs)
        runs.append(scores(y, pred))
        print(_line(f"seed {seed}", runs[-1], f"  train {seconds:.0f} s"), flush=True)
    print(_summary(f"mean ± std ({len(runs)})", runs))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    main()
