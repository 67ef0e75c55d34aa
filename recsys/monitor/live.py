"""Live results: the production version judged, after the push, on what customers then bought.

Next basket: each complete week from the version's cut-off on (the cut-off of its push-time scores,
``nextbasket.scores.cutoff``) is scored with the next-basket protocol of `trendrec evaluate-rerank`
(recsys.evaluation.protocol: customers who bought in the 28 days before the week and buy in it; their
distinct items are the targets; Recall@10, NDCG@10, PHR@10, repeat and explore recall). The version's
lists are its push-time scores (registry.Release.scores_file), exactly what the service ranks with;
beside it P-TopFreq and TIFU-kNN are fitted once at the same cut-off, on the events before it only,
so neither they nor the version see a day of the weeks they are judged on. For the first week the
baselines' figures are those `evaluate-rerank` reports for a cut-off on that day.

Customer value: once the forecast's horizon (``horizon_days`` of value.parquet) has passed, each
customer's forecast spend is compared with what they spent in [cut-off, cut-off + horizon)
(recsys.value.metrics: Spearman, normalised Gini, top-decile capture, MAE, total error), the
shipped forecast beside every member's column of the same table.

Rows go to monitor/live-results.parquet in long form (version, family, start, end, method, metric,
value, customers); a re-run replaces the rows of the (version, family, start) it judges, so a week is
in the table once per version whatever the number of runs.

    trendrec live --json
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import schemas as s
from pipeline.config import Config
from pipeline.store import Store, read_events, write_parquet
from recsys import registry
from recsys.evaluation.baselines import p_topfreq
from recsys.evaluation.protocol import EVENT_COLUMNS, TARGET_DAYS, Method, before, run_protocol
from recsys.evaluation.tifu_knn import tifu_knn, tune_tifu_knn
from recsys.monitor.windows import MonitorError
from recsys.rank.scores import read_scores
from recsys.value.metrics import value_metrics

log = logging.getLogger(__name__)

PRODUCTION = "production"
COLUMNS = ("version", "family", "start", "end", "method", "metric", "value", "customers")
SCHEMA = pa.schema([("version", pa.string()), ("family", pa.string()), ("start", pa.string()), ("end", pa.string()),
                    ("method", pa.string()), ("metric", pa.string()), ("value", pa.float64()),
                    ("customers", pa.int64())])
VALUE_MEMBERS = ("spend_bgnbd_gg", "spend_lstm", "spend_rfm")  # value.parquet's member columns, when present


def scores_cutoff(release: registry.Release) -> datetime.date | None:
    """The first day the version's push-time scores did not see."""
    meta = release.part_metadata("nextbasket")
    value = (meta.get("scores") or {}).get("cutoff") or (meta.get("train") or {}).get("cutoff")
    return datetime.date.fromisoformat(str(value)[:10]) if value else None


def score_method(path) -> Method:
    """The push-time scores as a protocol method (the same lists whatever the week)."""
    def method(events: pd.DataFrame, cutoff: datetime.date, users: np.ndarray) -> pd.DataFrame:
        return read_scores(path, users)
    return method


def at_cutoff(cutoff: datetime.date, tifu_params=None) -> dict[str, Method]:
    """P-TopFreq and TIFU-kNN fitted on the events before ``cutoff`` whatever week they are asked for."""
    def fixed(fit):
        return lambda events, week, users: fit(before(events, cutoff), cutoff, users)
    return {"p_topfreq": fixed(p_topfreq), "tifu_knn": fixed(lambda e, c, u: tifu_knn(e, c, u, params=tifu_params))}


def judge_nextbasket(release: registry.Release, events: pd.DataFrame, last: datetime.date,
                     weeks: int) -> list[dict[str, Any]]:
    cutoff = scores_cutoff(release)
    if release.scores_file is None or cutoff is None:
        log.info("%s ships no push-time customer scores: no next-basket live results", release.version)
        return []
    starts = [cutoff + datetime.timedelta(days=TARGET_DAYS * i) for i in range(weeks)]
    starts = [w for w in starts if w + datetime.timedelta(days=TARGET_DAYS - 1) <= last]
    if not starts:
        return []
    params = tune_tifu_knn(before(events, cutoff), cutoff)  # tuned once, on the week before the cut-off
    methods = {PRODUCTION: score_method(release.scores_file), **at_cutoff(cutoff, params)}
    result = run_protocol(events, methods, starts)
    rows = []
    for week in result["cutoffs"]:
        end = str(datetime.date.fromisoformat(week["cutoff"]) + datetime.timedelta(days=TARGET_DAYS - 1))
        for method in methods:
            figures = week[method]
            rows += [{"version": release.version, "family": "nextbasket", "start": week["cutoff"], "end": end,
                      "method": method, "metric": metric, "value": np.nan if v is None else float(v),
                      "customers": int(figures["users"])} for metric, v in figures.items() if metric != "users"]
    return rows


def judge_value(release: registry.Release, events: pd.DataFrame, last: datetime.date) -> list[dict[str, Any]]:
    part = release.part("value")
    table = part / "value.parquet" if part is not None else None
    if table is None or not table.is_file():
        return []
    forecast = pd.read_parquet(table)
    if forecast.empty or "horizon_days" not in forecast or "cutoff" not in forecast:
        return []
    cutoff = pd.Timestamp(forecast["cutoff"].iloc[0]).date()
    end = cutoff + datetime.timedelta(days=int(forecast["horizon_days"].iloc[0]))
    if end - datetime.timedelta(days=1) > last:
        log.info("%s's value forecast runs to %s; the log ends %s: not judged yet", release.version, end, last)
        return []
    day = pd.to_datetime(events[s.EVENT_DATE])
    inside = events[(day >= pd.Timestamp(cutoff)) & (day < pd.Timestamp(end)) & events[s.USER_ID].notna()]
    spent = (inside[s.QUANTITY] * inside[s.PRICE]).groupby(inside[s.USER_ID].astype(str)).sum()
    actual = forecast[s.USER_ID].astype(str).map(spent).fillna(0.0).to_numpy(float)
    rows = []
    for method, column in ((PRODUCTION, "expected_spend"), *((c.removeprefix("spend_"), c) for c in VALUE_MEMBERS)):
        if column in forecast:
            for metric, v in value_metrics(forecast[column].to_numpy(float), actual).items():
                rows.append({"version": release.version, "family": "value", "start": str(cutoff),
                             "end": str(end - datetime.timedelta(days=1)), "method": method, "metric": metric,
                             "value": float(v), "customers": len(forecast)})
    return rows


def read_live_results(store: Store | str) -> pd.DataFrame:
    """The live results table (empty with its columns when none was written)."""
    store = store if isinstance(store, Store) else Store(store)
    if not store.live_results.is_file():
        return pd.DataFrame({c: pd.Series(dtype=SCHEMA.field(c).type.to_pandas_dtype()) for c in COLUMNS})
    return pq.read_table(store.live_results).to_pandas()


def append_results(store: Store, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The table with ``rows`` in place of any earlier rows of their (version, family, start); written atomically."""
    table = read_live_results(store)
    new = pd.DataFrame(rows, columns=list(COLUMNS))
    keys = set(zip(new["version"], new["family"], new["start"]))
    kept = table[[k not in keys for k in zip(table["version"], table["family"], table["start"])]]
    out = pd.concat([kept, new], ignore_index=True) if len(kept) else new
    out = out.sort_values(["version", "family", "start", "method", "metric"], kind="mergesort").reset_index(drop=True)
    write_parquet(pa.Table.from_pandas(out, schema=SCHEMA, preserve_index=False), store.live_results)
    return out


def run_live_results(cfg: Config, weeks: int = 6) -> dict[str, Any]:
    """Judge the production version on every complete week since its cut-off (at most ``weeks``) and, when
    its horizon has passed, its value forecast; append to the live results table."""
    store = Store(cfg.store)
    release = registry.production(store)
    if release is None:
        raise MonitorError(f"no production model in {store.models}: run `trendrec push`")
    events = read_events(store, EVENT_COLUMNS + [s.PRICE])
    last = max(events[s.EVENT_DATE])
    rows = judge_nextbasket(release, events, last, weeks) + judge_value(release, events, last)
    if rows:
        append_results(store, rows)
    judged = pd.DataFrame(rows, columns=list(COLUMNS))
    summary = {f"{fam}:{start}": {m: round(v, 4) for m, v in g[g["metric"].isin(["recall@10", "spearman"])]
                                  .set_index("method")["value"].items()}
               for (fam, start), g in judged.groupby(["family", "start"])} if len(judged) else {}
    return {"model_version": release.version, "last_day": str(last), "rows": len(rows),
            "periods": summary, "table": str(store.live_results)}
