"""The customer model's blessing gate: beat the best simple baseline on the validation week.

Most neural next-basket models lose to personal top-frequency and TIFU-kNN (Li et al., TOIS 2023),
so a customer model is only shipped when it wins on the shop's own data. The week compared is the
model's validation week [cutoff - 7, cutoff) (the latest labelled week, the one early stopping
watched): the baselines (g_topfreq, p_topfreq, base and TIFU-kNN tuned on the week before) rank the
same customers under the next-basket protocol (recsys.evaluation.protocol) from the events before it.
Early stopping picked the model's epoch on this week, which flatters it a little; the held-out
proof is ``trendrec evaluate-rerank``, which retrains everything at every cut-off.

Writes ``<candidate>/customers/evaluation.json``: blessed, reason, the model's and every baseline's
validation Recall@10, and the best baseline.

    trendrec customers --json
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.store import Store, read_events, read_json, write_json
from recsys.forecast.evaluate import candidate_in_store
from recsys.nextbasket.scores import CUSTOMERS_DIR
from recsys.evaluation.baselines import base, g_topfreq, p_topfreq
from recsys.evaluation.protocol import EVENT_COLUMNS, run_protocol
from recsys.evaluation.tifu_knn import tifu_knn

log = logging.getLogger(__name__)

EVALUATION_FILE = "evaluation.json"  # in <candidate>/customers/
BASELINES = {"g_topfreq": g_topfreq, "p_topfreq": p_topfreq, "base": base, "tifu_knn": tifu_knn}
METRIC = "recall@10"


def judge_customer_model(cfg: Config, candidate_dir: str | Path, trained: dict[str, Any]) -> dict[str, Any]:
    """Bless the candidate's customer model when its validation Recall@10 beats every baseline's."""
    out_dir = candidate_in_store(Store(cfg.store), candidate_dir) / CUSTOMERS_DIR
    if (out_dir / EVALUATION_FILE).is_file():
        return read_json(out_dir / EVALUATION_FILE)
    if not trained.get("trained"):
        return {"blessed": False, "reason": trained.get("reason", "no customer model was trained")}
    val_cut = date.fromisoformat(trained["validation_cutoff"])
    events = read_events(Store(cfg.store), EVENT_COLUMNS)
    figures = run_protocol(events, BASELINES, [val_cut])["pooled"]
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
    result |= {"validation_cutoff": val_cut.isoformat(), "model": {METRIC: model}, "baselines": baselines}
    if trained.get("tensorboard"):  # the baselines beside the model's figure in its HParams row
        from recsys.evaluation.tensorboard import write_ranking_summary

        write_ranking_summary(trained["tensorboard"], None, {f"{name}_recall_at_10": value
                                                             for name, value in baselines.items()})
    write_json(result, out_dir / EVALUATION_FILE)
    log.info("customer model: %s", result["reason"])
    return result
