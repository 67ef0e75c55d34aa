"""The customer model's blessing gate: beat the best simple baseline on the validation week.

Most neural next-basket models lose to personal top-frequency and TIFU-kNN (Li et al., TOIS 2023),
so a customer model is only shipped when it wins on the shop's own data. The week compared is the
model's validation week [cutoff - 7, cutoff) (the latest labelled week, the one early stopping
watched): the baselines (g_topfreq, p_topfreq, base and TIFU-kNN tuned on the week before) rank the
same customers under the next-basket protocol (recsys.evaluation.protocol) from the events before it:
the ones the model was validated on (the run's validation_customers.parquet, the ``[customers]
validation_customers`` sample), so the comparison stays fair and its cost bounded on a large shop.
The baselines read the events of at most ``judge_customers`` customers (``judge_events``): the validated
ones and a stratified, seeded sample of the others, whose histories are TIFU-kNN's neighbours and the
popularity lists' crowd; on a shop with fewer customers (Online Retail) they read every event, as before.
Early stopping picked the model's epoch on this week, which flatters it a little; the held-out
proof is ``trendrec evaluate-rerank``, which retrains everything at every cut-off.

Writes the run's ``nextbasket/evaluation.json`` (blessed, reason, the model's and every baseline's
validation Recall@10, the best baseline) and its Verdict (``nextbasket/verdict.json``): when the model
is not blessed, a release carries production's customer model forward, or ships none (serving then
ranks by segment trends).

    trendrec customers --json
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import schemas as s
from pipeline.config import Config
from pipeline.eventdb import view_over_store
from pipeline.sampling import sample_customers
from pipeline.store import Store, read_events, read_json, write_json
from recsys import registry
from recsys.runs import EVALUATION_FILE, FINGERPRINT_KEY, TRAIN_FILE, Run, Verdict, write_verdict
from recsys.evaluation.baselines import base, g_topfreq, p_topfreq
from recsys.evaluation.protocol import EVENT_COLUMNS, TARGET_DAYS, run_protocol
from recsys.evaluation.tifu_knn import tifu_knn
from recsys.nextbasket.train import VALIDATION_FILE

log = logging.getLogger(__name__)

PART = "nextbasket"
BASELINES = {"g_topfreq": g_topfreq, "p_topfreq": p_topfreq, "base": base, "tifu_knn": tifu_knn}
METRIC = "recall@10"


def judge_customer_model(cfg: Config, run: Run) -> dict[str, Any]:
    """Bless the run's customer model when its validation Recall@10 beats every baseline's."""
    out_dir = run.part(PART)
    trained = read_json(out_dir / TRAIN_FILE) if (out_dir / TRAIN_FILE).is_file() else {}
    key = trained.get(FINGERPRINT_KEY)
    if key and (out_dir / EVALUATION_FILE).is_file():
        done = read_json(out_dir / EVALUATION_FILE)
        if done.get(FINGERPRINT_KEY) == key:
            return done | {"reused": True}
    if not trained.get("trained"):
        return {"blessed": False, "reason": trained.get("reason", "no customer model was trained")}
    result = _compare(cfg, trained, out_dir) | {FINGERPRINT_KEY: key}
    if trained.get("tensorboard"):  # the baselines beside the model's figure in its HParams row
        from recsys.evaluation.tensorboard import write_ranking_summary

        write_ranking_summary(trained["tensorboard"], None, {f"{name}_recall_at_10": value
                                                             for name, value in result["baselines"].items()})
    write_verdict(out_dir, nextbasket_verdict(result, registry.production(Store(cfg.store))))
    write_json(result, out_dir / EVALUATION_FILE)  # last: marks the judgement complete
    log.info("customer model: %s", result["reason"])
    return result | {"reused": False}


def _compare(cfg: Config, trained: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """The model's and the baselines' Recall@10 on the validation week's customers, and the blessing."""
    val_cut = date.fromisoformat(trained["validation_cutoff"])
    population = _validated(out_dir, val_cut)
    events, read = judge_events(cfg, val_cut, None if population is None else population[val_cut])
    figures = run_protocol(events, _baselines(cfg), [val_cut], population=population)["pooled"]
    baselines = {name: figures[name][METRIC] for name in BASELINES if name in figures}
    model = trained.get("val_recall@10")
    if not baselines or model is None:
        result = {"blessed": False, "reason": f"no validation customers in the week from {val_cut}"}
    else:
        best = max(baselines, key=baselines.get)
        blessed = model > baselines[best] + cfg.customers.bless_margin
        margin = cfg.customers.bless_margin
        verdict = ("beats" if model > baselines[best] else "does not beat") + (f" (margin {margin:+g})" if margin else "")
        result = {"blessed": blessed, "best_baseline": best,
                  "reason": f"validation Recall@10 {model:.4f} {verdict} the best baseline, {best} "
                            f"{baselines[best]:.4f} (week from {val_cut}, {figures[best]['users']} customers): "
                            f"{'blessed' if blessed else 'not blessed'}"}
    return result | {"validation_cutoff": val_cut.isoformat(), "model": {METRIC: model}, "baselines": baselines,
                     "events_of": read}


def judge_events(cfg: Config, val_cut: date, validated: np.ndarray | None) -> tuple[pd.DataFrame, dict[str, int]]:
    """The committed events the baselines see (``EVENT_COLUMNS``, dated before the validation week's end), and
    {"customers": whose events they are, "of": the known customers until then}.

    Every event when at most ``[customers] judge_customers`` customers (0: no bound) bought before the end;
    else the events of the validated customers and a sample of the others up to that many, by activity
    (pipeline.sampling, the model's ``seed``), guests' lines left out: memory follows the budget, not the shop.
    """
    budget, store = cfg.customers.judge_customers, Store(cfg.store)
    params = {"end": val_cut + timedelta(days=TARGET_DAYS)}
    con = view_over_store(str(store.root), _JUDGE_VIEW, cfg.customers.memory_limit)
    try:
        lines = con.execute(f"SELECT {s.USER_ID}, count(*) AS n FROM judge_events WHERE {s.USER_ID} IS NOT NULL "
                            f"AND {s.EVENT_DATE} < $end GROUP BY 1 ORDER BY 1", params).fetchnumpy()
        users, counts = np.asarray(lines[s.USER_ID], dtype=object), np.asarray(lines["n"])
        if not budget or len(users) <= budget:
            return read_events(store, EVENT_COLUMNS), {"customers": len(users), "of": len(users)}
        # hashed: np.isin compares object arrays element by element (a million users x 10,000 validated)
        chosen = (pd.Index(users).isin(validated) if validated is not None
                  else np.zeros(len(users), dtype=bool))
        rest = np.flatnonzero(~chosen)
        if budget > chosen.sum():
            chosen[rest[sample_customers(users[rest], counts[rest], budget - int(chosen.sum()),
                                         cfg.customers.seed)]] = True
        con.register("judged", pa.table({s.USER_ID: pa.array(users[chosen], pa.string())}))
        sql = (f"SELECT * FROM judge_events WHERE {s.EVENT_DATE} < $end "
               f"AND {s.USER_ID} IN (SELECT {s.USER_ID} FROM judged)")
        events = con.sql(sql, params=params).to_arrow_table().to_pandas()  # dates as datetime.date, as read_events
    finally:
        con.close()
    log.info("judge: the baselines read the events of %d of %d customers (judge_customers = %d)",
             int(chosen.sum()), len(users), budget)
    return events, {"customers": int(chosen.sum()), "of": len(users)}


# EVENT_COLUMNS of the committed raw files, typed as read_events gives them
_JUDGE_VIEW = (f"CREATE OR REPLACE VIEW judge_events AS SELECT CAST({s.USER_ID} AS VARCHAR) AS {s.USER_ID}, "
               f"CAST({s.ITEM_ID} AS VARCHAR) AS {s.ITEM_ID}, CAST({s.SEGMENT} AS VARCHAR) AS {s.SEGMENT}, "
               f"CAST({s.QUANTITY} AS DOUBLE) AS {s.QUANTITY}, CAST({s.EVENT_DATE} AS DATE) AS {s.EVENT_DATE}, "
               f"CAST({s.ORDER_ID} AS VARCHAR) AS {s.ORDER_ID} FROM ")


def _baselines(cfg: Config) -> dict[str, Any]:
    """BASELINES, TIFU-kNN tuned on at most ``validation_customers`` of the week before (the same bound)."""
    budget = cfg.customers.validation_customers
    return BASELINES | {"tifu_knn": partial(tifu_knn, tune_customers=budget, seed=cfg.customers.seed)}


def _validated(out_dir: Path, val_cut: date) -> dict[date, np.ndarray] | None:
    """{validation cut-off: the customers the model was validated on}; None (every customer of the week)
    for a run trained before the list was written."""
    path = out_dir / VALIDATION_FILE
    if not path.is_file():
        return None
    return {val_cut: pq.read_table(path, columns=[s.USER_ID]).column(s.USER_ID).to_numpy(zero_copy_only=False)}


def nextbasket_verdict(result: dict[str, Any], production: registry.Release | None) -> Verdict:
    """The Verdict of a judgement: the run's model when blessed, else production's (if it has one), else none."""
    best = result.get("best_baseline")
    if result.get("blessed"):
        ships = "run"
    else:
        held = production is not None and production.part(PART) is not None
        ships = "production" if held else "none"
    return Verdict(part=PART, blessed=bool(result.get("blessed")), metric=METRIC,
                   value=(result.get("model") or {}).get(METRIC), baseline=best,
                   baseline_value=(result.get("baselines") or {}).get(best) if best else None,
                   reason=str(result.get("reason")), ships=ships,
                   details={"validation_cutoff": result.get("validation_cutoff"),
                            "baselines": result.get("baselines")})
