"""The next-basket part in the flow: train, judge against the baselines, version with the forecaster, serve.

``small_store`` (tests/conftest.py) ran every stage on a 10 % sample of the demo data with a short
customer model blessed whatever its figure (``bless_margin = -1``); these tests read what it left.
"""

import dataclasses

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline import schemas as s
from pipeline.config import IngestConfig, load_config
from pipeline.store import Store, read_json
from recsys import flow, registry
from recsys.nextbasket.part import PART
from recsys.rank.scores import ScoreIndex
from recsys.report.status import store_status
from recsys.runs import create as create_run


@pytest.mark.slow
def test_the_pushed_version_holds_the_customer_model_and_its_scores(small_store):
    store = Store(small_store.store)
    release = registry.production(store)  # digests hold
    meta, version = release.metadata, release.path
    info = meta["parts"]["nextbasket"]
    assert info["ships"] == "run" and info["evaluation"]["blessed"] and info["verdict"]["blessed"]
    # the gate's figures: the model's validation Recall@10 and every baseline's, the best named
    assert set(info["evaluation"]["baselines"]) == {"g_topfreq", "p_topfreq", "base", "tifu_knn"}
    assert info["evaluation"]["best_baseline"] in info["evaluation"]["baselines"]
    assert any(name.startswith("nextbasket/") for name in meta[registry.FILES_KEY])  # hashed like the rest
    scores = pq.read_table(release.scores_file).to_pandas()
    assert scores[s.SCORE].between(0, 1).all()
    assert info["scores"]["pairs"] + info["scores"]["list_pairs_scored"] == len(scores)  # retrieved + the shop's
    per_user = scores[scores["source"] != "shop_list"].groupby(s.USER_ID).size()
    assert per_user.max() <= small_store.customers.n_candidates
    assert not scores.duplicated([s.USER_ID, s.ITEM_ID]).any()
    index = ScoreIndex.load(release.scores_file)
    user = per_user.index[0]
    assert index.lookup(user) == pytest.approx(dict(zip(*scores[scores[s.USER_ID] == user][[s.ITEM_ID, s.SCORE]]
                                                       .to_numpy().T)))
    assert index.lookup("nobody") == {} and index.lookup(None) == {}
    status = store_status(small_store)["customer_model"]
    assert status["model"] == "this version's" and status["customers_scored"] == per_user.size


@pytest.mark.slow
def test_rerank_uses_the_customer_scores_of_known_customers(small_store):
    out = pd.read_parquet(Store(small_store.store).reranked / "candidates.parquet")
    assert {"customer_model", "segment_trend"} <= set(out[s.SIGNAL])
    # within a list, every item the model scored comes before every item it did not
    first_unscored = out[out[s.SIGNAL] != "customer_model"].groupby(s.USER_ID)[s.RANK].min()
    last_scored = out[out[s.SIGNAL] == "customer_model"].groupby(s.USER_ID)[s.RANK].max()
    both = last_scored.index.intersection(first_unscored.index)
    assert (last_scored[both] < first_unscored[both]).all()


def test_rollback_moves_both_models(small_config, push_version):
    trends = pd.DataFrame({s.SEGMENT: ["up"], s.TREND: [0.5]})
    scores = pd.DataFrame({s.USER_ID: ["u1"], s.ITEM_ID: ["x"], s.SCORE: [0.7]})
    store = Store(small_config.store)
    assert push_version(small_config, trends, scores=scores) == "v0001"
    assert push_version(small_config, trends.assign(**{s.TREND: [-0.5]})) == "v0002"  # no customer model
    assert registry.production(store).scores_file is None
    registry.rollback(store)
    prod = registry.production(store)
    assert prod.version == "v0001" and ScoreIndex.load(prod.scores_file).lookup("u1") == {"x": pytest.approx(0.7)}


def _guest_store(tmp_path):
    """A store of ten weeks of guest checkouts (no known customer: nothing to train, no TensorFlow)."""
    rows = ["ts,item,qty,price,customer,invoice,desc"]
    day = pd.Timestamp("2024-01-01")
    for i in range(300):  # ten weeks of guest checkouts
        rows.append(f"{(day + pd.Timedelta(hours=5 * i)):%Y-%m-%d %H:%M:%S},A{i % 7},1,1.0,,i{i},MUG")
    (tmp_path / "guests.csv").write_text("\n".join(rows) + "\n")
    ingest = IngestConfig(columns={"event_time": "ts", "item_id": "item", "quantity": "qty", "price": "price",
                                   "user_id": "customer", "order_id": "invoice"}, segment_default="other")
    cfg = dataclasses.replace(load_config(None), store=str(tmp_path / "store"), ingest=ingest)
    flow.run_stage("ingest", cfg, source=str(tmp_path / "guests.csv"))
    return cfg


def test_a_guest_only_log_trains_no_customer_model_and_says_so(tmp_path):
    cfg = _guest_store(tmp_path)
    run = create_run(Store(cfg.store).ensure(), "guests")
    trained = PART.train(cfg, run)
    assert not trained["trained"] and "guest" in trained["reason"] and "segment trends" in trained["reason"]
    verdict = PART.judge(cfg, run)
    assert not verdict.blessed and verdict.ships == "none"  # no production to carry forward: no model
    staging = tmp_path / "staging" / "nextbasket"
    assert PART.assemble(cfg, run, staging, verdict, None) == {} and not staging.exists()


def test_the_nextbasket_command_trains_the_run_it_is_given(tmp_path):
    """`trendrec nextbasket models/runs/<id>` (the command's documented argument; the release kill harness
    runs it so) hands the stage ``run=``: it names the run, and is not passed on to the part's train a second
    time (it failed with "train() got multiple values for argument 'run'")."""
    cfg = _guest_store(tmp_path)
    create_run(Store(cfg.store).ensure(), "named")
    create_run(Store(cfg.store), "later")  # the latest run: the named one must be used, not this one
    summary = flow.run_stage("train_nextbasket", cfg, run="models/runs/named", progress=print)
    assert summary["run_dir"].endswith("/models/runs/named") and summary["trained"] is False


@pytest.mark.slow
def test_tensorboard_holds_loss_auc_recall_histograms_and_ranking_hparams(small_store, hparams_of_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = Store(small_store.store).runs / "small-nextbasket"
    hparams = hparams_of_run(run)
    assert hparams["cell"] == "lstm" and hparams["units"] == 8  # the customer model's settings
    acc = EventAccumulator(str(run), size_guidance={"tensors": 0})
    acc.Reload()
    ranking = set(acc.Tags()["tensors"])
    assert {"ranking/val_recall_at_10", "ranking/p_topfreq_recall_at_10", "ranking/tifu_knn_recall_at_10"} <= ranking
    val = EventAccumulator(str(run / "validation"), size_guidance={"tensors": 0})
    val.Reload()
    assert {"epoch_loss", "epoch_auc", "epoch_recall_at_10"} <= set(val.Tags()["tensors"])
    train = EventAccumulator(str(run / "train"), size_guidance={"tensors": 0, "histograms": 0})
    train.Reload()
    assert any("kernel" in tag for tag in train.Tags()["tensors"])  # weight histograms


@pytest.mark.slow
def test_segments_command_lists_the_models_segments_and_how_items_map(small_store, capsys):
    import json

    from recsys.cli import main
    from tests.conftest import DEMO_CONFIG

    assert main(["segments", "--config", str(DEMO_CONFIG), "--store", small_store.store, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    trends = pd.read_parquet(registry.load_release(Store(small_store.store), out["model_version"]).trend_file)
    assert [row["segment"] for row in out["segments"]] == sorted(trends[s.SEGMENT])
    assert all(row["items"] > 0 and row["example_items"] for row in out["segments"])
    assert "rules on column 'Description'" in out["assigned_by"]


@pytest.mark.slow
def test_the_shops_lists_handed_to_push_are_scored_by_the_model(small_store):
    """The config's lists (rerank.candidates) were handed to push: every pair of a customer the model knows
    has a push-time score, so batch and HTTP re-ranking order those lists by the model, not by trends."""
    release = registry.production(Store(small_store.store))
    scores = pq.read_table(release.scores_file).to_pandas()
    lists = pd.read_parquet(small_store.rerank.candidates).astype({s.USER_ID: str, s.ITEM_ID: str})
    known = lists[lists[s.USER_ID].isin(set(scores[s.USER_ID]))]
    assert len(known) > 0
    merged = known.merge(scores, on=[s.USER_ID, s.ITEM_ID], how="left")
    assert merged[s.SCORE].notna().all()  # retrieved by the model, or scored from the shop's list
    assert "shop_list" in set(scores["source"])
    assert not scores.duplicated([s.USER_ID, s.ITEM_ID]).any()
    out = pd.read_parquet(Store(small_store.store).reranked / "candidates.parquet")
    listed = out[out[s.USER_ID].astype(str).isin(set(known[s.USER_ID]))]
    assert (listed[s.SIGNAL] == "customer_model").all()
