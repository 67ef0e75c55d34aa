"""
### trendrec_pipeline

The whole trendrec flow, one task per stage:
**ingest → aggregate → train → evaluate → push → rerank**.

* Each task calls exactly one function of `pipeline` or `recsys` and returns a small summary
  (counts and paths) through XCom; data stays in the store.
* `config` and `store` params choose the TOML file and the store directory (defaults from
  `$TRENDREC_CONFIG` / `$TRENDREC_STORE`). `source` overrides the config's event file.
* The training run id is the logical date, so a re-run of the same date rewrites the same
  candidate instead of adding one. `push` only promotes a blessed model; `rerank` is skipped
  while no model is in production.

Run it once with `airflow dags test trendrec_pipeline 2011-12-10` (what `make demo` does).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from pipeline.errors import log_failure

DEFAULT_ARGS = {
    "owner": "trendrec",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "execution_timeout": timedelta(hours=2),
    "on_failure_callback": log_failure,
}


def _config(params: dict):
    from pipeline.config import load_config  # heavy imports stay inside tasks

    return load_config(params["config"] or None, store=params["store"] or None)


@dag(
    dag_id="trendrec_pipeline",
    schedule="@weekly",
    start_date=pendulum.datetime(2011, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    on_failure_callback=log_failure,
    tags=["trendrec", "training", "rerank"],
    doc_md=__doc__,
    params={
        "config": Param(os.environ.get("TRENDREC_CONFIG", ""), type="string", description="TOML config path"),
        "store": Param(os.environ.get("TRENDREC_STORE", ""), type="string", description="store directory"),
        "source": Param("", type="string", description="event file, directory or glob (default: config)"),
    },
)
def trendrec_pipeline():
    @task
    def ingest(params=None) -> dict:
        from pipeline.ingest.ingest import run_ingest

        return run_ingest(_config(params), params["source"] or None)

    @task
    def aggregate(ingested: dict, params=None) -> dict:
        from pipeline.aggregate.aggregate import run_aggregate

        return run_aggregate(_config(params))

    @task
    def train(aggregated: dict, params=None, ts_nodash=None) -> dict:
        from recsys.forecast.train import run_train

        return run_train(_config(params), run_id=ts_nodash)

    @task
    def evaluate(trained: dict, params=None) -> dict:
        from recsys.forecast.evaluate import run_evaluate

        return run_evaluate(_config(params), trained["candidate_dir"])

    @task
    def push(evaluated: dict, params=None) -> dict:
        from recsys.registry import push as push_candidate

        return push_candidate(_config(params), evaluated["candidate_dir"])

    @task
    def rerank(pushed: dict, params=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from recsys.registry import load_production
        from pipeline.store import Store

        cfg = _config(params)
        if load_production(Store(cfg.store)) is None:
            raise AirflowSkipException("no model in production yet: nothing to re-rank with")
        from recsys.rank.rerank import run_rerank

        return run_rerank(cfg)

    rerank(push(evaluate(train(aggregate(ingest())))))


trendrec_pipeline()
