"""The value computation: score the models on the latest split, choose the published one, forecast every customer.

``compute_value`` works on the store's committed log and writes into one folder (recsys.value.part, which
owns the run folder, the fingerprint and the swap into place, calls its steps one by one: ``fit_value``,
``write_forecast_shard`` per shard, ``finish_value``, so that the DAG runs each shard as a task of its own):

1. the split whose hold-out is the last H days of the log (recsys.value.backtest), on the customer-days of
   at most ``value.fit_customers`` customers (recsys.value.data.fit_days: a sample by activity when the
   shop has more; the fits of step 3 read the same sample): each
   model's Spearman, normalized Gini, top-decile capture, MAE and total-spend error, and the
   decile table; the model reported for that hold-out is chosen on the H days before it;
2. the published model (recsys.value.choice): for the forecast from the end of the log the last H
   days are the validation window, so the rule reads the split's figures: the ensemble when it is no
   worse than BG/NBD + GG on all four figures, else the best member that is, else BG/NBD + GG;
3. the members refitted on the whole log and every customer seen in the log scored in ``customers.shards``
   shards (a stable hash of the id, pipeline.sampling), each in hash-bucket batches of
   ``value.batch_customers``, then joined into ``value.parquet`` (pipeline.schemas.VALUE_SCHEMA, sorted
   by customer): ``expected_spend`` is the published model's (the ensemble's blend, or the member's own
   spend).

Lines without a customer id (guests) are left out and counted: ``guest_lines`` is the number of such
lines (not of customers: a guest has no id to count by).

    trendrec value --horizon-days 90 --json
"""

from __future__ import annotations

import logging
import shutil
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import schemas as s
from pipeline.config import Config, ValueConfig
from pipeline.store import atomic_path, read_json, write_json
from recsys.value import bgnbd as bg
from recsys.value.backtest import Split, run_split
from recsys.value.choice import choose, shipped_weights
from recsys.value.data import (
    ValueModelError,
    bucket_customer_days,
    drop_buckets,
    fit_days,
    guest_lines,
    read_bucket,
)
from recsys.value.ensemble import (
    ENSEMBLE,
    MEMBERS,
    Members,
    blend,
    fit_members,
    predict_members,
)
from recsys.value.features import build_features
from recsys.value.rfm import RidgeModel

log = logging.getLogger(__name__)

VALUE_FILE = "value.parquet"
SHARDS_DIR = "shards"  # the shards' level-1 forecasts until the join (removed after it)
ROW_GROUP = 65_536  # rows per row group of value.parquet: fixed, so the bytes do not depend on the shards
SUMMARY_FILE = "value.json"  # the split's figures, deciles, weights, the published model and the forecast's summary
PENDING_FILE = "value.pending.json"  # value.json without the forecast: written by fit_value, gone after the join
MODELS_FILE = "models.json"  # the forecast members' parameters and the published weights
REPORTED = ("bgnbd_gg", "lstm", ENSEMBLE)  # the models of `trendrec value --json`
JSON_KEYS = ("calibration_end", "holdout_days", "customers", "models")


def compute_value(con, cfg: ValueConfig, end: date, folder: Path, tensorboard: Path,
                  shards: int = 1) -> dict[str, Any]:
    """Steps 1-3 of the module doc on customer-days before ``end``, written into ``folder``; the summary.

    The members are fitted and saved (``fit_value``), loaded back, each of ``shards`` shards scored in
    turn (``write_forecast_shard``) and the shards joined (``finish_value``): the steps and files of the
    sharded DAG, in one process. Raises ValueFitError when BG/NBD cannot be fitted (too few customers).
    """
    fit_value(con, cfg, end, folder, tensorboard)
    members, weights = load_members(folder, cfg)
    for shard in range(shards):
        write_forecast_shard(con, members, weights, cfg, folder, shard, shards)
    return finish_value(folder, shards)


def fit_value(con, cfg: ValueConfig, end: date, folder: Path, tensorboard: Path) -> dict[str, Any]:
    """Steps 1-2 and the members of step 3: the members and the published weights saved into ``folder``
    (models.json, the LSTM), the summary so far in its PENDING_FILE until ``finish_value``."""
    started = time.monotonic()
    days, sampled = fit_days(con, end, cfg)
    split = run_split(days, end - timedelta(days=cfg.horizon_days), cfg, tensorboard)
    members = fit_members(days, end, cfg, tensorboard / "forecast")
    available = {m for m in MEMBERS if m in fitted_members(members)} | {ENSEMBLE}
    published = choose({m: f for m, f in split.metrics().items() if m in available})
    weights = shipped_weights(published, split.next_weights)
    folder.mkdir(parents=True, exist_ok=True)
    summary = split_summary(split) | {
        "published": published, "holdout_published": split.holdout_choice(), "validation": split.validation,
        "fit_customers": sampled, "guest_lines": guest_lines(con, end), "weights": split.weights,
        "ensemble_weights": split.next_weights,
        "bgnbd": members.bgnbd.to_json(), "gamma_gamma": members.gamma_gamma.to_json(),
        "tensorboard": str(tensorboard), "seconds": round(time.monotonic() - started, 1)}
    _save_members(members, weights, folder)
    write_json(summary | {"deciles": split.deciles()}, folder / PENDING_FILE)
    _write_hparams(tensorboard, cfg)
    log.info("customer value: %s published (chosen on the last %d days; hold-out choice %s)",
             published, cfg.horizon_days, summary["holdout_published"])
    return summary


def finish_value(folder: Path, shards: int) -> dict[str, Any]:
    """The ``shards`` forecast files joined into value.parquet (``join_forecast``) and value.json written from
    the PENDING_FILE with the forecast's summary; the summary (without the deciles)."""
    saved, pending = read_json(Path(folder) / MODELS_FILE), read_json(Path(folder) / PENDING_FILE)
    forecast = join_forecast(date.fromisoformat(saved["cutoff"]), saved["weights"], shards, folder)
    write_json(pending | {"forecast": forecast}, Path(folder) / SUMMARY_FILE)
    (Path(folder) / PENDING_FILE).unlink()
    return {k: v for k, v in pending.items() if k != "deciles"} | {"forecast": forecast}


def load_members(folder: Path, cfg: ValueConfig) -> tuple[Members, dict[str, float]]:
    """The members and published weights ``fit_value`` saved in ``folder`` (what a forecast shard scores with)."""
    saved = read_json(Path(folder) / MODELS_FILE)
    lstm = None
    if saved["lstm"]:
        from recsys.value.ziln import ValueLSTM  # TensorFlow: only when the LSTM was fitted

        lstm = ValueLSTM.load(folder, cfg)
    ridge = None if saved["rfm"] is None else RidgeModel.from_json(saved["rfm"])
    members = Members(date.fromisoformat(saved["cutoff"]), saved["horizon_days"], bg.BGNBD(**saved["bgnbd"]),
                      bg.GammaGamma(**saved["gamma_gamma"]), lstm, ridge, saved["notes"])
    return members, saved["weights"]


def fitted_members(members: Members) -> tuple[str, ...]:
    """The members fitted at the forecast's cut-off (BG/NBD + GG always; the LSTM and ridge when trained)."""
    return ("bgnbd_gg",) + (("lstm",) if members.lstm is not None else ()) + (("rfm",) if members.ridge is not None else ())


def split_summary(split: Split) -> dict[str, Any]:
    """The figures of one split: the `trendrec value --json` keys, with every member's figures."""
    return {"calibration_end": split.calibration_end.isoformat(), "holdout_days": split.horizon,
            "customers": len(split.actual), "models": split.metrics()}


def json_object(summary: dict[str, Any]) -> dict[str, Any]:
    """The object `trendrec value --json` prints: the issue's four keys (three models), then ``published``
    (the model whose forecast ships), ``verdict`` (recsys.runs.Verdict as JSON) and ``reused``."""
    extra = {"published": summary.get("published"), "verdict": summary.get("verdict"),
             "reused": bool(summary.get("reused"))}
    if not summary.get("models"):
        return {k: summary.get(k) for k in JSON_KEYS} | extra | {"reason": summary.get("reason")}
    return {k: summary[k] for k in JSON_KEYS} | {"models": {m: summary["models"][m] for m in REPORTED
                                                            if m in summary["models"]}} | extra


def write_forecast(con, members: Members, weights: dict[str, float], cfg: ValueConfig, out_dir: Path,
                   shards: int = 1) -> dict[str, Any]:
    """Score every customer seen before the members' cut-off into ``out_dir/value.parquet``: each of the
    ``shards`` shards in turn (``write_forecast_shard``), then ``join_forecast``, as the sharded DAG does.

    Each customer is predicted once. The blend's level (recsys.value.ensemble.level_scale) is a ratio of
    totals over every customer, so shards are written at level 1 and the join rescales them (the spend
    and its band are linear in the level).
    """
    batches = sum(write_forecast_shard(con, members, weights, cfg, out_dir, k, shards)["batches"]
                  for k in range(shards))
    return join_forecast(members.cutoff, weights, shards, out_dir) | {"batches": batches}


def shard_path(out_dir: Path, shard: int, shards: int) -> Path:
    """The level-1 forecast of one shard, beside value.parquet until the join."""
    return Path(out_dir) / SHARDS_DIR / f"value-{shard:04d}-of-{shards:04d}.parquet"


def write_forecast_shard(con, members: Members, weights: dict[str, float], cfg: ValueConfig, out_dir: Path,
                         shard: int, shards: int) -> dict[str, Any]:
    """Score the customers of ``shard`` (stable hash of the id % ``shards``) at level 1 into its own file,
    in hash-bucket batches of ``cfg.batch_customers``: memory follows one batch (the customer-days are read
    from the log once, into a DuckDB table that spills: recsys.value.data.bucket_customer_days). The file is
    written under a temporary name and renamed: a re-run of the shard replaces it whole."""
    cutoff = members.cutoff
    path, rows = shard_path(out_dir, shard, shards), 0
    path.parent.mkdir(parents=True, exist_ok=True)
    n_buckets = bucket_customer_days(con, cutoff, cfg.batch_customers, shard=(shard, shards))  # one log read
    try:
        with atomic_path(path) as tmp, pq.ParquetWriter(tmp, s.VALUE_SCHEMA) as writer:
            for bucket in range(n_buckets):
                days = read_bucket(con, bucket)
                if not days.empty:
                    table = score_table(members, weights, 1.0, build_features(days, cutoff, cfg.seq_weeks))
                    writer.write_table(table)
                    rows += table.num_rows
    finally:
        drop_buckets(con)
    return {"shard": shard, "shards": shards, "customers": rows, "batches": n_buckets, "path": str(path)}


def join_forecast(cutoff: date, weights: dict[str, float], shards: int, out_dir: Path) -> dict[str, Any]:
    """The shards' level-1 rows sorted by customer, summed in that order for the level, rescaled and
    written as ``value.parquet``: the same bytes whatever the number of shards. The shard files go after;
    a missing one is refused, named."""
    paths = [shard_path(out_dir, k, shards) for k in range(shards)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueModelError(f"cannot join the value forecast: shard file(s) {missing} missing; run those shards first")
    table = pa.concat_tables([pq.read_table(p, schema=s.VALUE_SCHEMA) for p in paths])
    table = table.take(pa.compute.sort_indices(table, [(s.USER_ID, "ascending")]))
    totals = {"blend": float(np.sum(table[s.EXPECTED_SPEND].to_numpy()))}
    for member, column in s.MEMBER_SPEND.items():
        values = table[column].to_numpy()
        if len(values) and not np.isnan(values).all():
            totals[member] = float(np.sum(values))
    scale = _level(totals, weights)
    target = Path(out_dir) / VALUE_FILE
    with atomic_path(target) as tmp:
        pq.write_table(_rescaled(table, scale), tmp, compression="zstd", row_group_size=ROW_GROUP)
    shutil.rmtree(Path(out_dir) / SHARDS_DIR, ignore_errors=True)
    return {"cutoff": cutoff.isoformat(), "customers": table.num_rows, "shards": shards,
            "expected_spend": round(scale * totals["blend"], 2), "weights": weights, "scale": scale}


def _level(totals: dict[str, float], weights: dict[str, float]) -> float:
    """level_scale from running totals: sum_m w_m * total_m / the level-1 blend's total."""
    target = sum(w * totals[m] for m, w in weights.items() if m in totals)
    return target / totals["blend"] if totals["blend"] > 0 else 1.0


def _rescaled(table: pa.Table, scale: float) -> pa.Table:
    for column in (s.EXPECTED_SPEND, s.SPEND_P10, s.SPEND_P90):
        i = table.schema.get_field_index(column)
        table = table.set_column(i, table.schema.field(i), pa.compute.multiply(table[column], scale))
    return table


def score_table(members: Members, weights: dict[str, float], scale: float, feats) -> pa.Table:
    """VALUE_SCHEMA rows of one batch: the published spend, BG/NBD's orders and P(alive), the band.

    ``weights`` {member: 1.0} publishes that member's own spend (exactly), any other the ensemble's
    blend.
    """
    pred = predict_members(members, feats)
    alone = [m for m, w in weights.items() if w == 1.0 and m in pred.spend]
    spend = pred.spend[alone[0]] * scale if alone else blend(pred.spend, weights, scale)
    if pred.lstm_band is not None:  # the LSTM's ZILN band, moved to the ensemble's mean
        ratio = np.where(pred.spend["lstm"] > 0, spend / np.maximum(pred.spend["lstm"], 1e-12), 0.0)
        p10, p90 = pred.lstm_band[0] * ratio, pred.lstm_band[1] * ratio
    else:
        p10 = p90 = np.full(len(spend), np.nan)
    columns = {s.USER_ID: pred.users.astype(str), s.EXPECTED_SPEND: spend, s.EXPECTED_ORDERS: pred.expected_orders,
               s.SPEND_P10: p10, s.SPEND_P90: p90, s.P_ALIVE: pred.p_alive,
               s.HORIZON_DAYS: np.full(len(spend), members.horizon, dtype=np.int32),
               s.CUTOFF: np.full(len(spend), np.datetime64(members.cutoff, "D"))}
    for member, column in s.MEMBER_SPEND.items():
        columns[column] = pred.spend.get(member, np.full(len(spend), np.nan))
    return pa.Table.from_pydict(columns, schema=s.VALUE_SCHEMA)


def _save_members(members: Members, weights: dict[str, float], out_dir: Path) -> None:
    write_json({"cutoff": members.cutoff.isoformat(), "horizon_days": members.horizon, "weights": weights,
                "bgnbd": members.bgnbd.to_json(), "gamma_gamma": members.gamma_gamma.to_json(),
                "rfm": None if members.ridge is None else members.ridge.to_json(), "lstm": members.lstm is not None,
                "notes": members.notes},
               out_dir / "models.json")
    if members.lstm is not None:
        members.lstm.save(out_dir)  # LSTM_FILE and its lstm.json


def _write_hparams(run_dir: Path, cfg: ValueConfig) -> None:
    from recsys.evaluation.tensorboard import write_ranking_summary  # TensorFlow: only after training

    write_ranking_summary(run_dir, cfg)
