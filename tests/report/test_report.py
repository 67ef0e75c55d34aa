"""trendrec report on a small real store, plus the pure shaping functions on hand-made frames.

The ``small_store`` fixture (tests/conftest.py) runs every stage on every 10th row of the bundled
Online Retail data with a tiny model (2 epochs, 8 units); tests/test_notebooks.py executes the
notebooks on the same store.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.store import StoreError
from recsys.report import report
from tests.conftest import make_tiny_daily

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_run_report_writes_pngs_and_a_self_contained_page(small_store):
    out = report.run_report(small_store)
    folder = Path(small_store.store) / "report"
    assert out["output"] == str(folder) and out["html"] == str(folder / "index.html")
    names = {Path(p).stem for p in out["plots"]}
    assert {"month_weekday", "daily_trends", "movers", "decomposition", "holdout", "segment_mase", "loss",
            "rerank_examples"} <= names
    for path in out["plots"]:
        assert Path(path).read_bytes()[:8] == PNG_MAGIC
    page = (folder / "index.html").read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == len(out["plots"]) and base64.b64decode(images[0])[:8] == PNG_MAGIC
    assert not re.search(r"(?:src|href)=\"(?:https?:|//)", page) and "<script" not in page  # nothing fetched
    assert "seasonal_naive" in page and "mase" in page  # the metrics table
    assert "Combination per segment" in page and "w_" in page  # the weights table of combination.json
    # the ranking plot is drawn once `evaluate-rerank` has run on the store (tests/test_notebooks.py runs it)
    assert ("ranking" in names) != any("evaluate-rerank" in note for note in out["notes"])
    assert ("backtest_mase" in names) != any("trendrec backtest" in note for note in out["notes"])
    assert not list(folder.glob(".*"))  # no temporary file left behind


@pytest.mark.slow
def test_report_output_must_stay_inside_the_store(small_store, tmp_path):
    from pipeline.store import StoreError

    with pytest.raises(StoreError, match="outside the store"):
        report.run_report(small_store, str(tmp_path / "elsewhere"))
    out = report.run_report(small_store, "custom/report")
    assert out["html"] == str(Path(small_store.store) / "custom" / "report" / "index.html")


def test_report_without_aggregates_says_what_to_run(small_config):
    with pytest.raises(StoreError, match="run `trendrec aggregate` first"):
        report.run_report(small_config)


def _daily(values: dict[str, list[float]], start="2024-01-01") -> pd.DataFrame:
    frames = [pd.DataFrame({s.SEGMENT: seg, s.DATE: pd.date_range(start, periods=len(v)), s.REVENUE: v})
              for seg, v in values.items()]
    return pd.concat(frames, ignore_index=True)


def test_segment_movers_compares_the_last_days_with_the_days_before():
    daily = _daily({"up": [1, 1, 2, 2], "down": [4, 4, 1, 1], "new": [0, 0, 3, 0]})
    movers = report.segment_movers(daily, s.REVENUE, days=2)
    assert movers[s.SEGMENT].tolist() == ["up", "down", "new"]  # 'new' had nothing before: NaN last
    assert movers["change"].iloc[:2].tolist() == [pytest.approx(1.0), pytest.approx(-0.75)]
    assert np.isnan(movers["change"].iloc[2]) and movers["recent"].tolist() == [4, 2, 3]


def test_month_weekday_matrices_are_relative_to_the_segment_mean():
    mw = pd.DataFrame({s.SEGMENT: ["a", "a"], s.MONTH: [1, 1], s.WEEKDAY: [0, 1], s.DAYS: [2, 2],
                       s.REVENUE: [30.0, 10.0]})
    matrix = report.month_weekday_matrices(mw, s.REVENUE)["a"]
    assert matrix.shape == (12, 7)
    assert matrix.loc[1, 0] == pytest.approx(1.5) and matrix.loc[1, 1] == pytest.approx(0.5)  # mean day 10
    assert np.isnan(matrix.loc[2, 0])


def test_rerank_examples_pick_the_most_moved_list_with_ranks_before_and_after():
    reranked = pd.DataFrame({
        s.USER_ID: ["u1"] * 3 + ["u2"] * 2, s.ITEM_ID: ["x", "y", "z", "p", "q"], s.SEGMENT: "seg",
        s.BASE_SCORE: [0.5, 0.9, 0.1, 0.9, 0.5], s.TREND: 0.0, s.FINAL_SCORE: 0.0, s.RANK: [1, 2, 3, 1, 2]})
    examples = report.rerank_examples(reranked, users=1, k=3)
    assert examples[s.USER_ID].unique().tolist() == ["u1"]  # u2 kept its base order
    assert examples[s.ITEM_ID].tolist() == ["x", "y", "z"]
    assert examples["rank_before"].tolist() == [2, 1, 3] and examples["rank_after"].tolist() == [1, 2, 3]


def test_quantile_band_and_metrics_table():
    assert report.quantile_band(["segment", "date", "model"]) is None
    assert report.quantile_band(["p90", "p10", "p50", "model"]) == ("p10", "p90")
    table = report.metrics_table({"model": {"mase": 0.9, "mae": 1.0}, "seasonal_naive": {"mase": 1.1},
                                  "production": None})
    assert table.index.tolist() == ["model", "seasonal_naive"] and table.loc["model", "mase"] == 0.9
    assert np.isnan(table.loc["seasonal_naive", "mae"])


def test_combination_table_shows_weights_and_validation_mase(tmp_path):
    import json

    assert report.combination_table(tmp_path) is None  # a version saved before combinations
    (tmp_path / "combination.json").write_text(json.dumps({
        "weights": {"a": {"lstm": 0.25, "auto_ets": 0.75}, "__default__": {"seasonal_naive": 1.0}},
        "validation": {"a": {"lstm": 1.2, "auto_ets": 0.4}}}), encoding="utf-8")
    table = report.combination_table(tmp_path)
    assert table.loc["a", "w_auto_ets"] == 0.75 and table.loc["a", "mase_lstm"] == 1.2
    assert table.loc["__default__", "w_seasonal_naive"] == 1.0 and np.isnan(table.loc["__default__", "w_lstm"])


def test_load_ranking_reads_the_protocol_result_of_evaluate_rerank(tmp_path):
    from pipeline.store import Store, write_json

    store = Store(tmp_path).ensure()
    assert report.load_ranking(store) is None
    fig = {"recall@10": 0.2, "ndcg@10": 0.3, "phr@10": 0.8, "repeat_recall@10": 0.3, "explore_recall@10": 0.0,
           "users": 5}
    result = {"pooled": {"p_topfreq": fig, "lstm_recommender": fig | {"recall@10": 0.25}},
              "cutoffs": [{"cutoff": "2011-12-03", "p_topfreq": fig, "lstm_recommender": fig | {"recall@10": 0.25}}]}
    write_json(result, store.reranked / "evaluation.json")
    pooled, per_cutoff = report.load_ranking(store)
    assert pooled.set_index("method")["recall@10"].to_dict() == {"p_topfreq": 0.2, "lstm_recommender": 0.25}
    assert sorted(per_cutoff[["cutoff", "method"]].values.tolist()) == [["2011-12-03", "lstm_recommender"],
                                                                       ["2011-12-03", "p_topfreq"]]
    write_json({"pooled": [{"weight": 0.0}]}, store.reranked / "evaluation.json")  # an older trendrec's sweep
    assert report.load_ranking(store) is None


def test_report_without_a_model_draws_the_trend_plots_and_says_what_is_missing(small_config):
    import pyarrow as pa

    from pipeline.store import Store, write_parquet

    store = Store(small_config.store).ensure()
    daily = make_tiny_daily()
    month_weekday = daily.groupby([s.SEGMENT, s.MONTH, s.WEEKDAY], as_index=False).agg(
        **{s.DAYS: (s.DATE, "count"), s.REVENUE: (s.REVENUE, "sum")})
    write_parquet(pa.Table.from_pandas(daily, preserve_index=False), store.daily_path)
    write_parquet(pa.Table.from_pandas(month_weekday, preserve_index=False), store.month_weekday_path)
    out = report.run_report(small_config)
    assert sorted(Path(p).stem for p in out["plots"]) == ["daily_trends", "decomposition", "month_weekday",
                                                          "movers"]
    assert out["notes"] == ["No production model yet: run `trendrec train`, `evaluate` and `push`."]
    assert "No production model yet" in Path(out["html"]).read_text(encoding="utf-8")


@pytest.mark.slow
def test_status_says_what_is_true_now(small_store):
    """Production now, apart from what the release rule said at its push; every metric beside the baseline's."""
    from recsys.report.status import METRICS, status_lines, store_status

    status = store_status(small_store)
    assert status["production_version"] == "v0001" and status["versions"] == ["v0001"]
    assert status["production_history"] == []
    then = status["at_push"]
    assert then["production_then"] is None and then["run"].startswith("models/runs/")
    assert status["forecaster"]["ships"] == "run" and status["verdicts"]["forecast"]["blessed"]
    assert set(status["model_metrics"]) == set(status["seasonal_naive_metrics"]) == set(METRICS)
    assert sorted(status["model_beats_baseline_on"] + status["model_loses_on"]) == sorted(
        k for k in METRICS if status["model_metrics"][k] != status["seasonal_naive_metrics"][k])
    assert status["segments_compared"] >= status["segments_model_wins"] + len(status["segments_model_loses"])
    assert status["latest_run"]["pushed_as"] == "v0001"
    lines = status_lines(status)
    assert lines[0].startswith("Production now: v0001") and "production then: none" in lines[1]
    segments = next(line for line in lines if line.startswith("Segments (MASE)"))
    assert all(seg in segments for seg in status["segments_model_loses"])


def test_compare_with_baseline_names_the_metrics_and_segments_the_model_loses():
    from recsys.report.status import compare_with_baseline

    metrics = {"model": {"mase": 0.9, "mae": 12.0, "rmse": 20.0, "mape": None, "smape": 30.0, "r2": 0.5},
               "seasonal_naive": {"mase": 1.0, "mae": 10.0, "rmse": 20.0, "mape": 40.0, "smape": 25.0, "r2": 0.4}}
    per_segment = {"b": {"model": {"mase": 1.2}, "seasonal_naive": {"mase": 0.8}},
                   "a": {"model": {"mase": 0.5}, "seasonal_naive": {"mase": 0.9}},
                   "c": {"model": {"mase": 2.0}, "seasonal_naive": {"mase": 1.5}},
                   "d": {"model": {"mase": None}, "seasonal_naive": {"mase": 1.0}}}
    got = compare_with_baseline(metrics, per_segment)
    # rmse ties (neither), mape is undefined for the model (not compared), r2: higher is better
    assert got == {"model_beats_baseline_on": ["mase", "r2"], "model_loses_on": ["mae", "smape"],
                   "segments_compared": 3, "segments_model_wins": 1, "segments_model_loses": ["b", "c"]}


def test_status_lines_keep_production_now_apart_from_the_push_then():
    from recsys.report.status import status_lines

    verdict = {"part": "forecast", "blessed": True, "metric": "mase", "value": 0.8, "baseline": "auto_ets",
               "baseline_value": 0.9, "ships": "run", "reason": "forecaster MASE 0.8 beats auto_ets 0.9"}
    status = {"production_version": "v0003", "production_history": ["v0001"], "trained_until": "2011-11-01",
              "holdout_end": "2011-11-29",
              "at_push": {"pushed_at": "2026-01-01T00:00:00+00:00", "production_then": None,
                          "reason": "forecast: forecaster MASE 0.8 beats auto_ets 0.9"},
              "forecaster": {"label": "the run's forecaster (blessed)", "holdout_mase": 0.8, "name": "model"},
              "verdicts": {"forecast": verdict, "nextbasket": None},
              "model_beats_baseline_on": ["mase"], "model_loses_on": ["mae", "mape"],
              "segments_compared": 3, "segments_model_wins": 1, "segments_model_loses": ["b", "c"]}
    lines = status_lines(status)
    assert lines[0] == ("Production now: v0003 (models/production.json; earlier: v0001), trained until "
                        "2011-11-01, hold-out to 2011-11-29.")
    assert lines[1] == ("At its push (2026-01-01T00:00:00+00:00; production then: none): "
                        "forecast: forecaster MASE 0.8 beats auto_ets 0.9.")
    assert lines[2] == "Its segment forecaster is the run's forecaster (blessed); hold-out MASE 0.8 (model)."
    assert lines[3] == ("Verdict, forecast: blessed (mase 0.8 vs auto_ets 0.9); ships run: "
                        "forecaster MASE 0.8 beats auto_ets 0.9.")
    assert lines[4] == "Verdict, nextbasket: no verdict recorded (a version written before verdicts)."
    assert lines[5] == "Against seasonal naive on the hold-out: better on mase; worse on mae, mape."
    assert lines[6] == "Segments (MASE): the shipped forecaster wins 1 of 3 and loses 2: b, c."
    assert status_lines({"production_version": None}) == []


def test_plot_trend_scores_draws_the_table_values():
    from recsys.report import plots

    trends = pd.DataFrame({s.SEGMENT: ["lunch_boxes", "bags", "christmas"], s.TREND: [0.196, -0.05, 0.3]})
    fig = plots.plot_trend_scores(trends)
    bars = fig.axes[0].patches
    drawn = {label.get_text(): bar.get_width() for label, bar in zip(fig.axes[0].get_yticklabels(), bars)}
    assert drawn == pytest.approx({"bags": -0.05, "lunch_boxes": 0.196, "christmas": 0.3})


def test_loss_plot_names_the_loss_the_model_was_trained_with(tmp_path):
    import json

    from recsys.report import plots

    assert report.loss_of({"loss": "mae", "quantiles": []}) == "mae"
    assert report.loss_of({"loss": "mae", "quantiles": [0.1, 0.5, 0.9]}) == "pinball"
    assert report.loss_of({}) == "huber"  # saved before the option existed
    (tmp_path / "recommender.json").write_text(json.dumps({"config": {"loss": "huber"}}))
    assert report.loss_name(tmp_path) == "huber"  # a version saved before config.json
    (tmp_path / "config.json").write_text(json.dumps({"model": {"loss": "mae", "quantiles": []}}))
    assert report.loss_name(tmp_path) == "mae"  # the config the forecaster was trained with comes first
    fig = plots.plot_loss({"loss": [1.0, 0.8], "val_loss": [1.1, 0.9]}, report.loss_name(tmp_path))
    assert fig.axes[0].get_ylabel() == "mae loss (scaled target)"


@pytest.mark.slow
def test_report_plots_the_trend_scores_reranking_uses_and_says_what_is_true_now(small_store):
    from pipeline.store import Store, read_trends
    from recsys import registry

    store = Store(small_store.store)
    release = registry.production(store)
    version, table = release.version, read_trends(release.trend_file)
    figures, tables, notes = report.report_figures(small_store)
    ax = figures["trend_scores"].axes[0]
    drawn = {label.get_text(): bar.get_width() for label, bar in zip(ax.get_yticklabels(), ax.patches)}
    assert drawn == pytest.approx(dict(zip(table[s.SEGMENT], table[s.TREND])))
    loss = report.loss_name(report.production_record(store)["dir"])
    assert figures["loss"].axes[0].get_ylabel() == f"{loss} loss (scaled target)"
    assert loss == small_store.model.loss
    assert notes[0].startswith(f"Production now: {version}") and "production then: none" in notes[1]
    assert not any("no model in production" in note for note in notes)
    assert any(note.startswith("Against seasonal naive") for note in notes)
