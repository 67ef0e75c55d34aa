"""The value stage: score the value models on the latest split, then forecast every customer's next H days.

``run_value`` (the flow's ``value`` stage, ``trendrec value``) works on the store's committed log:

1. the split whose hold-out is the last H days of the log (recsys.value.backtest): each
   model's Spearman, normalized Gini, top-decile capture, MAE and total-spend error, and the
   decile table;
2. the members refitted on the whole log, blended with the weights chosen on that hold-out (for
   this forecast it is the validation window before the future), and every customer seen in the
   log scored in hash-bucket batches of ``value.batch_customers`` into
   ``<candidate>/customers/value/value.parquet`` (recsys.pipeline.schemas.VALUE_SCHEMA).

The candidate's ``customers/value/`` (parquet, value.json, bgnbd.json, rfm.json, lstm.keras) goes
into the registry version with the models at push (``assemble_value``), so a rollback moves it
too. Customers without an id are left out and counted (``customers_without_id``: their lines).

    trendrec value --horizon-days 90 --json
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import schemas as s
from pipeline.config import Config, ValueConfig
from pipeline.store import Store, atomic_path, read_json, write_json
from recsys.nextbasket.scores import CUSTOMERS_DIR
from recsys.value.backtest import Split, run_split
from recsys.value.bgnbd import ValueFitError
from recsys.value.data import (
    count_customers,
    customer_days,
    guest_lines,
    last_event_day,
    open_value_store,
)
from recsys.value.ensemble import (
    ENSEMBLE,
    Members,
    blend,
    fit_members,
    predict_members,
)
from recsys.value.features import build_features
from recsys.forecast.evaluate import candidate_in_store

log = logging.getLogger(__name__)

VALUE_DIR = f"{CUSTOMERS_DIR}/value"  # in a candidate and in a version
VALUE_FILE = "value.parquet"
SUMMARY_FILE = "value.json"  # the split's figures, deciles, weights and the forecast's summary
REPORTED = ("bgnbd_gg", "lstm", ENSEMBLE)  # the models of `trendrec value --json`
JSON_KEYS = ("calibration_end", "holdout_days", "customers", "models")


def run_value(cfg: Config, candidate_dir: str | Path, horizon_days: int | None = None,
              run_id: str | None = None) -> dict[str, Any]:
    """Judge the models on the latest split and write the forecast into ``<candidate>/customers/value/``."""
    started = time.monotonic()
    vcfg = dataclasses.replace(cfg.value, horizon_days=horizon_days) if horizon_days else cfg.value
    store = Store(cfg.store)
    out_dir = candidate_in_store(store, candidate_dir) / VALUE_DIR
    if (out_dir / SUMMARY_FILE).is_file() and read_json(out_dir / SUMMARY_FILE).get("holdout_days") == vcfg.horizon_days:
        log.info("customer value in %s already computed; reusing it", out_dir)
        return {k: v for k, v in read_json(out_dir / SUMMARY_FILE).items() if k != "deciles"} | {"reused": True}
    con = open_value_store(str(store.root), vcfg)
    end = last_event_day(con) + timedelta(days=1)
    run_dir = store.ensure().runs / f"{run_id or Path(candidate_dir).name}-value"
    days = customer_days(con, end)
    H = timedelta(days=vcfg.horizon_days)
    try:
        split = run_split(days, end - H, vcfg, run_dir)
        members = fit_members(days, end, vcfg, run_dir / "forecast")
    except ValueFitError as exc:
        log.warning("no customer value forecast: %s", exc)
        return {"trained": False, "reason": f"no customer value forecast: {exc}"}
    summary = split_summary(split) | {
        "customers_without_id": guest_lines(con, end), "weights": split.weights,
        "forecast": write_forecast(con, members, split.next_weights, vcfg, out_dir),
        "bgnbd": members.bgnbd.to_json(), "gamma_gamma": members.gamma_gamma.to_json(),
        "tensorboard": str(run_dir), "seconds": round(time.monotonic() - started, 1)}
    _save_members(members, split.next_weights, out_dir)
    _write_hparams(run_dir, vcfg)
    write_json(summary | {"deciles": split.deciles()}, out_dir / SUMMARY_FILE)  # last: marks the stage done
    return summary


def split_summary(split: Split) -> dict[str, Any]:
    """The figures of one split: the `trendrec value --json` keys, with every member's figures."""
    return {"calibration_end": split.calibration_end.isoformat(), "holdout_days": split.horizon,
            "customers": len(split.actual), "models": split.metrics()}


def json_object(summary: dict[str, Any]) -> dict[str, Any]:
    """Exactly the object `trendrec value --json` prints: the issue's four keys, three models."""
    if not summary.get("models"):
        return {k: summary.get(k) for k in JSON_KEYS} | {"reason": summary.get("reason")}
    return {k: summary[k] for k in JSON_KEYS} | {"models": {m: summary["models"][m] for m in REPORTED
                                                            if m in summary["models"]}}


def write_forecast(con, members: Members, weights: dict[str, float], cfg: ValueConfig,
                   out_dir: Path) -> dict[str, Any]:
    """Score every customer seen before the members' cut-off in hash-bucket batches into ``out_dir/value.parquet``.

    Each customer is predicted once. The blend's level (recsys.value.ensemble.level_scale)
    is a ratio of totals over every customer, so batches are written at level 1 beside a running
    sum of the members' and the blend's totals, then rescaled batch by batch (the spend and its band
    are linear in the level): memory follows one batch whatever the number of customers.
    """
    cutoff = members.cutoff
    n_buckets = max(1, math.ceil(count_customers(con, cutoff) / cfg.batch_customers))
    target, rows, totals = out_dir / VALUE_FILE, 0, {"blend": 0.0}
    level1 = out_dir / f".{VALUE_FILE}.level1.tmp"  # the batches at level 1, until the level is known
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with pq.ParquetWriter(level1, s.VALUE_SCHEMA) as writer:
            for bucket in range(n_buckets):
                days = customer_days(con, cutoff, bucket=(bucket, n_buckets))
                if not days.empty:
                    table = score_table(members, weights, 1.0, build_features(days, cutoff, cfg.seq_weeks), totals)
                    writer.write_table(table)
                    rows += table.num_rows
        scale = _level(totals, weights)
        with atomic_path(target) as tmp, pq.ParquetWriter(tmp, s.VALUE_SCHEMA, compression="zstd") as writer:
            source = pq.ParquetFile(level1)
            for group in range(source.num_row_groups):
                writer.write_table(_rescaled(source.read_row_group(group), scale))
    finally:
        level1.unlink(missing_ok=True)
    total = scale * totals["blend"]  # the level-1 spend summed while scoring, at the level now known
    return {"cutoff": cutoff.isoformat(), "customers": rows, "batches": n_buckets, "expected_spend": round(total, 2),
            "weights": weights, "scale": scale, "output": str(target)}


def _level(totals: dict[str, float], weights: dict[str, float]) -> float:
    """level_scale from running totals: sum_m w_m * total_m / the level-1 blend's total."""
    target = sum(w * totals[m] for m, w in weights.items() if m in totals)
    return target / totals["blend"] if totals["blend"] > 0 else 1.0


def _rescaled(table: pa.Table, scale: float) -> pa.Table:
    for column in (s.EXPECTED_SPEND, s.SPEND_P10, s.SPEND_P90):
        i = table.schema.get_field_index(column)
        table = table.set_column(i, table.schema.field(i), pa.compute.multiply(table[column], scale))
    return table


def score_table(members: Members, weights: dict[str, float], scale: float, feats,
                totals: dict[str, float] | None = None) -> pa.Table:
    """VALUE_SCHEMA rows of one batch: the ensemble's spend, BG/NBD's orders and P(alive), the band.

    ``totals`` ({"blend": ..., member: ...}) gets this batch's spend totals added (write_forecast's level).
    """
    pred = predict_members(members, feats)
    spend = blend(pred.spend, weights, scale)
    if totals is not None:
        totals["blend"] += float(spend.sum()) / scale
        for member, values in pred.spend.items():
            totals[member] = totals.get(member, 0.0) + float(np.sum(values))
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
                "rfm": None if members.ridge is None else members.ridge.to_json(), "notes": members.notes},
               out_dir / "models.json")
    if members.lstm is not None:
        members.lstm.save(out_dir)


def _write_hparams(run_dir: Path, cfg: ValueConfig) -> None:
    from recsys.evaluation.tensorboard import write_ranking_summary  # TensorFlow: only after training

    write_ranking_summary(run_dir, cfg)


def assemble_value(candidate_dir: str | Path, staging: Path) -> dict[str, Any]:
    """Put the candidate's ``customers/value/`` into the version being pushed; the ``value`` metadata field.

    Runs after the customer model's assembler, which may have replaced ``staging/customers/`` with
    production's customer model: the value forecast is always this candidate's own.
    """
    source, target = Path(candidate_dir) / VALUE_DIR, staging / VALUE_DIR
    shutil.rmtree(target, ignore_errors=True)
    if not (source / SUMMARY_FILE).is_file():
        return {"value": None}
    shutil.copytree(source, target)
    summary = json.loads((source / SUMMARY_FILE).read_text(encoding="utf-8"))
    return {"value": {"holdout_days": summary.get("holdout_days"), "forecast": summary.get("forecast", {}).get("cutoff"),
                      "models": json_object(summary).get("models")}}


def run_value_command(cfg: Config, args, candidate_dir: str) -> dict[str, Any]:
    """`trendrec value`: the stage; with ``--json`` exactly the issue's object (calibration_end ... models)."""
    summary = run_value(cfg, candidate_dir, args.horizon_days)
    if args.json:
        return json_object(summary)
    models = {m: " ".join(f"{k}={v:.3f}" for k, v in figures.items()) for m, figures in summary.get("models", {}).items()}
    return summary | {"models": models}  # one line per model in the human summary
