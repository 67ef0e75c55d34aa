"""The customers stage in the flow: train, judge against the baselines, version with the forecaster, serve.

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
from recsys.nextbasket.publish import assemble_customers
from recsys.nextbasket.scores import SCORES_FILE, ScoreIndex
from recsys.nextbasket.train import train_customer_model
from recsys.nextbasket.judge import judge_customer_model
from recsys.report.status import store_status


@pytest.mark.slow
def test_the_pushed_version_holds_the_customer_model_and_its_scores(small_store):
    store = Store(small_store.store)
    version = registry.verify_version(store, registry.read_production(store)["version"])  # digests hold
    meta = read_json(version / registry.METADATA_FILE)
    info = meta["customers"]
    assert info["model"] == "candidate" and info["evaluation"]["blessed"]
    # the gate's figures: the model's validation Recall@10 and every baseline's, the best named
    assert set(info["evaluation"]["baselines"]) == {"g_topfreq", "p_topfreq", "base", "tifu_knn"}
    assert info["evaluation"]["best_baseline"] in info["evaluation"]["baselines"]
    assert any(name.startswith("customers/") for name in meta[registry.FILES_KEY])  # hashed like the rest
    scores = pq.read_table(version / SCORES_FILE).to_pandas()
    assert scores[s.SCORE].between(0, 1).all() and info["scores"]["pairs"] == len(scores)
    per_user = scores.groupby(s.USER_ID).size()
    assert per_user.max() <= small_store.customers.n_candidates
    assert not scores.duplicated([s.USER_ID, s.ITEM_ID]).any()
    index = ScoreIndex.load(version / SCORES_FILE)
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
    assert not (store.models / "v0002" / SCORES_FILE).exists()
    registry.rollback(store)
    prod = registry.verify_version(store, registry.read_production(store)["version"])
    assert prod.name == "v0001" and ScoreIndex.load(prod / SCORES_FILE).lookup("u1") == {"x": pytest.approx(0.7)}


def test_a_guest_only_log_trains_no_customer_model_and_says_so(tmp_path):
    rows = ["ts,item,qty,price,customer,invoice,desc"]
    day = pd.Timestamp("2024-01-01")
    for i in range(300):  # ten weeks of guest checkouts
        rows.append(f"{(day + pd.Timedelta(hours=5 * i)):%Y-%m-%d %H:%M:%S},A{i % 7},1,1.0,,i{i},MUG")
    (tmp_path / "guests.csv").write_text("\n".join(rows) + "\n")
    ingest = IngestConfig(columns={"event_time": "ts", "item_id": "item", "quantity": "qty", "price": "price",
                                   "user_id": "customer", "order_id": "invoice"}, segment_default="other")
    cfg = dataclasses.replace(load_config(None), store=str(tmp_path / "store"), ingest=ingest)
    flow.run_stage("ingest", cfg, source=str(tmp_path / "guests.csv"))
    candidate = Store(cfg.store).ensure().models / "candidates" / "guests"
    candidate.mkdir(parents=True)
    trained = train_customer_model(cfg, candidate)
    assert not trained["trained"] and "guest" in trained["reason"] and "segment trends" in trained["reason"]
    judged = judge_customer_model(cfg, candidate, trained)
    assert not judged["blessed"]
    staging = tmp_path / "staging"
    staging.mkdir()
    fields = assemble_customers(cfg, staging)  # no production to carry forward: no customer model
    assert fields["customers"]["model"] is None and not (staging / "customers").exists()


@pytest.mark.slow
def test_tensorboard_holds_loss_auc_recall_histograms_and_ranking_hparams(small_store, hparams_of_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = Store(small_store.store).runs / "small-customers"
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
def test_a_shops_own_lists_are_scored_like_the_push_time_candidates(small_store):
    from recsys.nextbasket.scores import CUSTOMERS_DIR, score_lists

    store = Store(small_store.store)
    version = registry.verify_version(store, registry.read_production(store)["version"])
    pushed = pq.read_table(version / SCORES_FILE).to_pandas()
    sample = pushed.groupby(s.USER_ID).head(3).head(60)  # the model's own candidates of 20 customers
    shop = pd.concat([sample[[s.USER_ID, s.ITEM_ID]],
                      pd.DataFrame({s.USER_ID: ["no-such-customer"], s.ITEM_ID: [sample[s.ITEM_ID].iloc[0]]})])
    got = score_lists(store.root, version / CUSTOMERS_DIR, shop, small_store.customers)
    # the same features at the same cut-off: the same probabilities; an unknown customer gets none
    merged = sample.merge(got, on=[s.USER_ID, s.ITEM_ID], suffixes=("_pushed", "_batch"))
    assert len(merged) == len(sample) and "no-such-customer" not in set(got[s.USER_ID])
    np.testing.assert_allclose(merged[f"{s.SCORE}_batch"], merged[f"{s.SCORE}_pushed"], rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_segments_command_lists_the_models_segments_and_how_items_map(small_store, capsys):
    import json

    from recsys.cli import main
    from tests.conftest import DEMO_CONFIG

    assert main(["segments", "--config", str(DEMO_CONFIG), "--store", small_store.store, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    trends = pd.read_parquet(Store(small_store.store).models / out["model_version"] / registry.TREND_FILE)
    assert [row["segment"] for row in out["segments"]] == sorted(trends[s.SEGMENT])
    assert all(row["items"] > 0 and row["example_items"] for row in out["segments"])
    assert "rules on column 'Description'" in out["assigned_by"]
