"""The CLI's human summaries (recsys.report.text): aligned tables for results, "none" for nothing (issue 32).

    .venv/bin/python -m pytest tests/report/test_text.py -q
"""

from recsys.report.text import VERDICT_COLUMNS, format_summary, table

VERDICTS = {
    "forecast": {"part": "forecast", "blessed": True, "metric": "mase", "value": 0.91, "baseline": "auto_theta",
                 "baseline_value": 1.25, "reason": "beats auto_theta", "ships": "run", "against": None,
                 "details": {"cutoff": "2011-11-25"}},
    "nextbasket": {"part": "nextbasket", "blessed": False, "metric": "recall@10", "value": 0.0773,
                   "baseline": "base", "baseline_value": 0.0789, "reason": "does not beat base",
                   "ships": "production", "against": "v0001", "details": {}},
}
METHODS = ("g_topfreq", "base", "segment_trend", "lstm_recommender")
POOLED = {m: {"recall@10": 0.2 + i / 100, "ndcg@10": 0.1, "phr@10": 0.4, "repeat_recall@10": 0.1,
              "explore_recall@10": 0.0, "users": 1200 + i} for i, m in enumerate(METHODS)}


def rows_below(text: str, heading: str) -> list[list[str]]:
    """The header and rows of the table under ``heading:`` (lines indented deeper), split on spaces."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"{heading}:")
    depth = len(lines[start]) - len(lines[start].lstrip())
    out = []
    for line in lines[start + 1:]:
        if len(line) - len(line.lstrip()) <= depth:
            break
        out.append(line.split())
    return out


def test_table_aligns_columns_numbers_right_text_left():
    lines = table([{"method": "base", "recall@10": 0.25, "users": 5},
                   {"method": "lstm_recommender", "recall@10": 0.3125, "users": 1200}],
                  ["method", "recall@10", "users"])
    assert lines == ["method            recall@10  users",
                     "base                   0.25      5",
                     "lstm_recommender     0.3125   1200"]


def test_evaluate_prints_one_row_per_part_verdict():
    text = format_summary("trendrec evaluate: judged", {"config": "c.toml", "store": "/s", "run_dir": "/s/r",
                                                        "pushable": True, "push_reason": "forecast blessed",
                                                        "verdicts": VERDICTS}, "evaluate")
    rows = rows_below(text, "verdicts")
    assert rows[0] == ["part", *VERDICT_COLUMNS]
    assert rows[1][:7] == ["forecast", "yes", "mase", "0.91", "auto_theta", "1.25", "run"]
    assert rows[2][:7] == ["nextbasket", "no", "recall@10", "0.0773", "base", "0.0789", "production"]
    assert text.splitlines()[1:3] == ["  config: c.toml", "  store: /s"]
    assert "metrics: production=None" not in text and "None" not in text


def test_push_prints_the_version_the_previous_and_what_each_part_ships():
    summary = {"pushed": True, "run": "models/runs/r", "version": "v0002", "model_dir": "/s/models/v0002",
               "reason": "forecast blessed", "previous": "v0001", "pruned": [],
               "parts": {"forecast": {"ships": "run", "metrics": {"model": {"mase": 0.9}}},
                         "nextbasket": {"ships": "production"},
                         "value": {"ships": "ensemble", "carried_from": "v0001"}},
               "segments": ["a"], "run_dir": "/s/models/runs/r", "verdicts": VERDICTS}
    text = format_summary("trendrec push: push", {"config": "c", "store": "/s"} | summary, "push")
    assert "  version: v0002" in text and "  previous: v0001" in text and "  pruned: none" in text
    rows = rows_below(text, "ships")
    assert rows[0][:3] == ["part", "ships", "blessed"] and rows[0][-1] == "carried_from"
    assert [r[:3] for r in rows[1:]] == [["forecast", "run", "yes"], ["nextbasket", "production", "no"],
                                         ["value", "ensemble", "-"]]
    assert rows[3][-1] == "v0001"


def test_evaluate_rerank_prints_the_pooled_table_and_recall_per_cut_off():
    cutoffs = [{"cutoff": f"2011-11-{d}", **POOLED} for d in (19, 26)]
    summary = {"pooled": POOLED, "cutoffs": cutoffs, "k": 10, "weeks": 2, "methods": list(METHODS),
               "seconds": {m: 2.0 for m in METHODS}, "wins_over_best_baseline": {"lstm_recommender": 2},
               "output": "/s/reranked/evaluation.json"}
    text = format_summary("trendrec evaluate-rerank", summary, "evaluate-rerank")
    pooled = rows_below(text, "pooled")
    assert pooled[0] == ["method", "recall@10", "ndcg@10", "phr@10", "users", "seconds"]
    assert pooled[4] == ["lstm_recommender", "0.23", "0.1", "0.4", "1203", "2"]
    per_cutoff = rows_below(text, "recall@10 per cut-off")
    assert per_cutoff[0] == ["cutoff", *METHODS] and len(per_cutoff) == 3
    assert "  wins_over_best_baseline: lstm_recommender=2" in text.splitlines()


def test_status_prints_none_for_an_empty_history_and_the_ranking_as_a_table():
    ranking = {"cutoffs": 6, **{m: {k: row[k] for k in ("recall@10", "ndcg@10", "users")}
                                for m, row in POOLED.items()}, "wins_over_best_baseline": {"lstm_recommender": 3}}
    status = {"store": "/s", "production_version": "v0001", "production_history": [], "verdicts": VERDICTS,
              "value_model": {"ships": "ensemble", "verdict": VERDICTS["forecast"]},
              "latest_run": {"run": "r", "pushed_as": "v0001", "verdicts": VERDICTS}, "ranking": ranking}
    text = format_summary("trendrec status: status", {"config": "built-in defaults"} | status, "status")
    lines = text.splitlines()
    assert lines[1:3] == ["  config: built-in defaults", "  store: /s"]
    assert "  production_history: none" in lines and "  ranking: cutoffs=6" in lines
    assert [r[0] for r in rows_below(text, "pooled")] == ["method", *METHODS]
    assert len(rows_below(text, "verdicts")) == 3  # production's, once: the latest run is that version
    assert "  value_model: ships=ensemble" in lines


def test_value_prints_the_models_figures_as_a_table():
    models = {"bgnbd_gg": {"mae": 63.4, "spearman": 0.47}, "ensemble": {"mae": 65.1, "spearman": 0.5}}
    text = format_summary("trendrec value", {"models": models, "published": "ensemble",
                                             "verdict": VERDICTS["forecast"] | {"part": "value"}}, "value")
    assert rows_below(text, "models") == [["model", "mae", "spearman"], ["bgnbd_gg", "63.4", "0.47"],
                                          ["ensemble", "65.1", "0.5"]]
    assert rows_below(text, "verdicts")[1][0] == "value"


def test_demo_says_which_parts_were_blessed_and_what_the_version_ships():
    summary = {"config": "trendrec.toml", "store": "/s", "rows_in": 10, "blessed": {"forecast": True,
               "nextbasket": False, "value": True}, "pushed": True, "version": "v0001",
               "ships": {"forecast": "run", "nextbasket": "p_topfreq", "value": "ensemble"}}
    lines = format_summary("trendrec demo", summary, "demo").splitlines()
    assert "  blessed: forecast, value (not blessed: nextbasket)" in lines
    assert "  pushed: v0001 (forecast: run, nextbasket: p_topfreq, value: ensemble)" in lines
    nothing = summary | {"blessed": {"forecast": False}, "pushed": False, "version": None, "ships": {}}
    assert "  pushed: no" in format_summary("t", nothing, "demo").splitlines()
