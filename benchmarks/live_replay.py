"""Live results on Online Retail replayed week by week, beside `evaluate-rerank`'s per-cut-off figures.

For each of the last ``--weeks`` weekly cut-offs c of the demo log (the cut-offs of `evaluate-rerank`):
the replay store holds the events before c (the demo export sliced by InvoiceDate, ingested with
trendrec.toml: the first slice is everything before the first cut-off, then one file per week), the
retrain stages run on it (recsys.flow: aggregate, train_nextbasket, judge, push with the drift gate and
the config's lists, as the retrain DAG would; train_forecast only at the first cut-off, since a first
release needs a forecaster and the forecaster does not enter the next-basket lists; train_value never,
for the same reason), then the week [c, c + 7) lands (`trendrec ingest` of its slice) and `trendrec live`
judges the production version on it. Beside it, `evaluate-rerank` runs once on a store of the whole log
(p_topfreq, tifu_knn, lstm_recommender; no cold-start section) and the differences are printed.

``production_retrieved`` is the production version's push-time scores without the rows push added for
the shop's own lists (source ``shop_list``): the model's retrieved candidates only, the candidate set
`evaluate-rerank`'s lstm_recommender ranks. Affordable on 2 cores: the forecaster is trained with
``model.ensemble = 1`` (it only has to exist); the customer model keeps the demo's settings, so its
figures are the ones `evaluate-rerank` reports.

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/live_replay.py --work /tmp/live-replay
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import time
from pathlib import Path

import pandas as pd

from pipeline import schemas as s
from pipeline.config import Config, load_config
from pipeline.ingest.ingest import run_ingest
from pipeline.store import Store, read_events
from recsys import flow, registry
from recsys.evaluation.protocol import EVENT_COLUMNS, SCORE, run_protocol
from recsys.monitor.live import PRODUCTION, read_live_results, run_live_results
from recsys.offline.evaluate_rerank import run_evaluate_rerank

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo" / "online_retail.parquet"
METHODS = (PRODUCTION, "p_topfreq", "tifu_knn")
REFERENCE = {PRODUCTION: "lstm_recommender", "p_topfreq": "p_topfreq", "tifu_knn": "tifu_knn"}
METRICS = ("recall@10", "ndcg@10", "phr@10", "repeat_recall@10", "explore_recall@10")
RETRIEVED = "production_retrieved"

log = logging.getLogger("live_replay")


def replay_config(store: Path) -> Config:
    cfg = load_config(ROOT / "trendrec.toml", store=str(store))
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, ensemble=1))


def write_slices(cutoffs: list[datetime.date], work: Path) -> list[Path]:
    """The demo export before the first cut-off, then one file per target week (InvoiceDate is UK local
    time, the ingest's zone, so its date is the event_date the store gives it)."""
    raw = pd.read_parquet(DEMO)
    day = raw["InvoiceDate"].dt.normalize()
    edges = [pd.Timestamp.min, *(pd.Timestamp(c) for c in cutoffs), pd.Timestamp(cutoffs[-1] + datetime.timedelta(7))]
    paths = []
    for i, (lo, hi) in enumerate(zip(edges, edges[1:])):
        path = work / f"slice-{i}.parquet"
        if not path.exists():
            raw[(day >= lo) & (day < hi)].to_parquet(path, index=False)
        paths.append(path)
    return paths


def retrain(cfg: Config, cutoff: datetime.date, first: bool) -> dict:
    """The retrain DAG's stages on the store as it stands (events before ``cutoff``); what the push did."""
    key = f"replay-{cutoff}"
    stages = ["aggregate", *(["train_forecast"] if first else []), "train_nextbasket", "judge", "push"]
    upstream, out, started = {}, {}, time.perf_counter()
    for name in stages:
        summary = flow.run_stage(name, cfg, upstream, run_key=key)
        upstream = {flow.RUN_DIR: summary[flow.RUN_DIR]} if flow.RUN_DIR in summary else upstream
        out[name] = summary
    verdict = out["judge"]["verdicts"].get("nextbasket", {})
    return {"cutoff": str(cutoff), "pushed": bool(out["push"].get("pushed")),
            "push_reason": out["push"].get("reason") or out["judge"].get("push_reason"),
            "held_by": out["push"].get("held_by"), "nextbasket_blessed": verdict.get("blessed"),
            "nextbasket_ships": verdict.get("ships"), "seconds": round(time.perf_counter() - started, 1)}


def retrieved_only(scores: Path):
    table = pd.read_parquet(scores, columns=[s.USER_ID, s.ITEM_ID, s.SOURCE, SCORE])
    table = table[table[s.SOURCE] != "shop_list"][[s.USER_ID, s.ITEM_ID, SCORE]]
    return lambda events, cutoff, users: table[table[s.USER_ID].isin(users)]


def replay(work: Path, cutoffs: list[datetime.date]) -> tuple[list[dict], dict[str, dict]]:
    cfg = replay_config(work / "replay-store")
    slices = write_slices(cutoffs, work)
    run_ingest(cfg, str(slices[0]))
    pushes, weeks = [], {}
    for i, cutoff in enumerate(cutoffs):
        pushes.append(retrain(cfg, cutoff, first=i == 0))
        log.warning("push at %s: %s", cutoff, pushes[-1])
        run_ingest(cfg, str(slices[i + 1]))  # the week lands
        live = run_live_results(cfg, weeks=len(cutoffs))
        release = registry.production(Store(cfg.store))
        table = read_live_results(cfg.store)
        rows = table[(table["version"] == release.version) & (table["family"] == "nextbasket")
                     & (table["start"] == str(cutoff))]
        week = {m: {r.metric: r.value for r in g.itertuples()} | {"users": int(g["customers"].iloc[0])}
                for m, g in rows.groupby("method")}
        events = read_events(Store(cfg.store), EVENT_COLUMNS)
        alone = run_protocol(events, {RETRIEVED: retrieved_only(release.scores_file)}, [cutoff])
        week[RETRIEVED] = alone["cutoffs"][0][RETRIEVED] if alone["cutoffs"] else {}
        weeks[str(cutoff)] = {"version": release.version, "live_rows": live["rows"], **week}
    return pushes, weeks


def reference(work: Path) -> dict:
    """`evaluate-rerank` on the whole log (reused from an earlier run in ``work``)."""
    cfg = replay_config(work / "full-store")
    saved = Store(cfg.store).reranked / "evaluation.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    if not Store(cfg.store).commits.is_dir():
        run_ingest(cfg, str(DEMO))
    return run_evaluate_rerank(cfg, weeks=6, methods=["p_topfreq", "tifu_knn", "lstm_recommender"],
                               cold_start=False)


def print_table(weeks: dict[str, dict], offline: dict) -> None:
    by_cutoff = {row["cutoff"]: row for row in offline["cutoffs"]}
    print("| week | version | method | customers | " + " | ".join(METRICS) + " | evaluate-rerank Recall@10 / NDCG@10 "
          "| difference Recall@10 / NDCG@10 |")
    print("|---" * (len(METRICS) + 6) + "|")
    for cutoff, week in weeks.items():
        for method in (*METHODS, RETRIEVED):
            live = week.get(method) or {}
            ref = by_cutoff.get(cutoff, {}).get(REFERENCE.get(method, "lstm_recommender"), {})
            figures = " | ".join("" if live.get(m) is None else f"{live[m]:.4f}" for m in METRICS)
            diff = [live.get(m) - ref[m] if live.get(m) is not None and ref.get(m) is not None else None
                    for m in ("recall@10", "ndcg@10")]
            print(f"| {cutoff} | {week['version']} | {method} | {live.get('users', '')} | {figures} | "
                  f"{ref.get('recall@10', float('nan')):.4f} / {ref.get('ndcg@10', float('nan')):.4f} | "
                  + " / ".join("" if d is None else f"{d:+.4f}" for d in diff) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/live-replay"))
    parser.add_argument("--weeks", type=int, default=6)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    offline = reference(args.work)
    cutoffs = [datetime.date.fromisoformat(row["cutoff"]) for row in offline["cutoffs"]][-args.weeks:]
    log.warning("evaluate-rerank done (%.0f s): cut-offs %s", time.perf_counter() - started, cutoffs)
    pushes, weeks = replay(args.work, cutoffs)
    print_table(weeks, offline)
    print(json.dumps({"pushes": pushes, "weeks": weeks, "evaluate_rerank": offline["cutoffs"],
                      "seconds": round(time.perf_counter() - started)}, indent=1, default=str))


if __name__ == "__main__":
    main()
