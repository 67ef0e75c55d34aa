"""The CLI's human summaries as plain text: scalars one per line, results as aligned tables.

``format_summary(title, summary, command)`` turns a command's summary (the same dict ``--json`` prints)
into lines a person reads: a scalar is ``key: value``; a table of rows (a dict of dicts, such as each
part's verdict or each method's pooled figures, or a list of dicts, such as the model versions) is a
table with one row per entry and aligned columns; an empty value reads "none". A few commands first
reshape their summary with a *view* (``VIEWS``: the judge's verdicts, what a push ships, the pooled
ranking and its cut-offs, the status's ranking table, the demo's blessed parts), leaving their JSON as it
is. Plain text, no dependency.

    trendrec status --store trendrec-data      # prints format_summary("trendrec status: status", ...)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

# key of a table in a summary -> (the name of its rows' label column, the columns shown; () = every scalar)
VERDICT_COLUMNS = ("blessed", "metric", "value", "baseline", "baseline_value", "ships", "reason")
TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "verdicts": ("part", VERDICT_COLUMNS),
    "pooled": ("method", ("recall@10", "ndcg@10", "phr@10", "users", "seconds")),
    "ships": ("part", ("ships", "blessed", "metric", "value", "baseline", "baseline_value", "carried_from")),
    "models": ("model", ()),
    "validation": ("model", ()),
}
FIRST = ("config", "store")  # shown first in every summary: which config and which store the command used
MAX_CUTOFF_ROWS = 12  # evaluate-rerank prints Recall@10 per cut-off when it has at most this many
MAX_LIST = 20  # items of a list of scalars shown on its line


def format_summary(title: str, summary: dict[str, Any], command: str = "") -> str:
    """The human summary of ``command``: ``title``, then every entry of its (viewed) summary."""
    view = VIEWS.get(command)
    shown = view(summary) if view else dict(summary)
    shown = {k: shown.pop(k) for k in FIRST if k in shown} | shown
    lines = [title] if title else []
    for key, value in shown.items():
        lines += entry(key, value, "  ")
    return "\n".join(lines)


def entry(key: str, value: Any, indent: str) -> list[str]:
    """The lines of one summary entry: a scalar line, a list on one line, a table, or a nested block."""
    if _empty(value):
        return [f"{indent}{key}: none"]
    if isinstance(value, list):
        if all(isinstance(v, dict) for v in value):
            return [f"{indent}{key}:", *table(value, _columns(key, value), indent + "  ")]
        shown = ", ".join(cell(v) for v in value[:MAX_LIST]) + (" ..." if len(value) > MAX_LIST else "")
        return [f"{indent}{key}: {shown}"]
    if not isinstance(value, dict):
        return [f"{indent}{key}: {cell(value)}"]
    if _is_table(value):
        label, _ = TABLES.get(key, ("name", ()))
        rows = [{label: name, **(row or {})} for name, row in value.items()]
        return [f"{indent}{key}:", *table(rows, [label, *_columns(key, rows, label)], indent + "  ")]
    scalars = ", ".join(f"{k}={cell(v)}" for k, v in value.items() if not isinstance(v, (dict, list)))
    lines = [f"{indent}{key}: {scalars}".rstrip()]
    for k, v in value.items():
        if isinstance(v, (dict, list)):
            lines += entry(k, v, indent + "  ")
    return lines


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], indent: str = "") -> list[str]:
    """``rows`` as aligned text columns under a header: numbers to the right, the last column unpadded."""
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    numeric = [all(_number(row.get(c)) or row.get(c) is None for row in rows) for c in columns]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return (indent + "  ".join(parts)).rstrip()

    return [line(list(columns)), *(line(r) for r in cells)]


def cell(value: Any) -> str:
    """One value as text: yes/no, 4 significant digits, "-" for nothing."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    return str(value)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (list, dict, str)) and not value)


def _is_table(value: dict[str, Any]) -> bool:
    """A dict of rows: every value a dict (or None: a row with nothing recorded), at least one dict."""
    return any(isinstance(v, dict) for v in value.values()) and all(
        v is None or isinstance(v, dict) for v in value.values())


def _columns(key: str, rows: Sequence[dict[str, Any]], label: str = "") -> list[str]:
    """The columns of table ``key``: those TABLES names that some row has, else every scalar in first-seen order."""
    chosen = TABLES.get(key, ("", ()))[1]
    if chosen:
        return [c for c in chosen if any(c in row for row in rows)]
    seen: dict[str, None] = {}
    for row in rows:
        seen |= {k: None for k, v in row.items() if k != label and not isinstance(v, (dict, list))}
    return list(seen)


# --- views: a command's summary reshaped for reading (its JSON is left as it is) ---------------------------
def _judge_view(summary: dict[str, Any]) -> dict[str, Any]:
    """`trendrec evaluate`: whether the run can be pushed, then one row per part's verdict."""
    return {k: v for k, v in summary.items() if k != "verdicts"} | {"verdicts": summary.get("verdicts")}


def _push_view(summary: dict[str, Any]) -> dict[str, Any]:
    """`trendrec push`: the version and the one before it, then what ships per part (parts and verdicts joined)."""
    verdicts, parts = summary.get("verdicts") or {}, summary.get("parts") or {}
    ships = {}
    for name in dict.fromkeys([*parts, *verdicts]):
        part, verdict = parts.get(name) or {}, verdicts.get(name) or {}
        ships[name] = {k: verdict.get(k) for k in VERDICT_COLUMNS if k != "reason"} | {
            "ships": part.get("ships", verdict.get("ships")), "carried_from": part.get("carried_from")}
    keys = ("pushed", "version", "previous", "run", "reason", "model_dir", "pruned")
    shown = {k: summary.get(k) for k in keys if k in summary}
    return shown | {"ships": ships} | {k: v for k, v in summary.items() if k not in {*keys, "parts", "verdicts",
                                                                                       "segments", "run_dir"}}


def _ranking_view(summary: dict[str, Any]) -> dict[str, Any]:
    """`trendrec evaluate-rerank`: the pooled table (with each method's seconds), Recall@10 per cut-off."""
    seconds = summary.get("seconds") or {}
    pooled = {m: dict(row or {}) | {"seconds": seconds.get(m)} for m, row in (summary.get("pooled") or {}).items()}
    out = {"pooled": pooled}
    cutoffs = summary.get("cutoffs") or []
    if 0 < len(cutoffs) <= MAX_CUTOFF_ROWS:
        out["recall@10 per cut-off"] = [{"cutoff": row.get("cutoff"), **{
            m: (row.get(m) or {}).get("recall@10") for m in pooled}} for row in cutoffs]
    cold = (summary.get("cold_start") or {}).get("pooled") or {}
    if cold:  # one row per method, Recall@10 and NDCG@10 per population
        out["cold start"] = {m: {f"{p} {key}": ((cold[p].get(m) or {}).get(f"{key}@10")) for p in cold
                                 for key in ("recall", "ndcg")} for m in dict.fromkeys(
                                     m for by in cold.values() for m in by)}
        choice = summary["cold_start"].get("release_choice") or {}
        out["trend weight a push would choose"] = {k: choice.get(k)
                                                   for k in ("weight", "helped", "week_from", "reason")}
    hidden = {"pooled", "cutoffs", "seconds", "methods", "cold_start"}
    return out | {k: v for k, v in summary.items() if k not in hidden}


def _status_view(summary: dict[str, Any]) -> dict[str, Any]:
    """`trendrec status`: the ranking as a table (method rows) beside its cut-offs and wins."""
    out = dict(summary)
    ranking = summary.get("ranking")
    if isinstance(ranking, dict):
        methods = {k: v for k, v in ranking.items() if isinstance(v, dict) and k != "wins_over_best_baseline"}
        scalars = {k: v for k, v in ranking.items() if not isinstance(v, dict)}
        out["ranking"] = scalars | {"pooled": methods} | {k: v for k, v in ranking.items() if k not in {
            *scalars, *methods}}
    value = summary.get("value_model")
    if isinstance(value, dict) and "verdicts" in summary:  # its verdict is a row of the verdicts table
        out["value_model"] = {k: v for k, v in value.items() if k != "verdict"}
    latest = summary.get("latest_run")
    if isinstance(latest, dict) and latest.get("pushed_as") and latest["pushed_as"] == summary.get("production_version"):
        out["latest_run"] = latest | {"verdicts": "the production version's, above"}
    return out


def _value_view(summary: dict[str, Any]) -> dict[str, Any]:
    """`trendrec value`: its verdict as a row of the verdicts table, after the models' figures and what ships."""
    verdict = summary.get("verdict")
    out: dict[str, Any] = {}
    for key, value in summary.items():
        if key != "verdict":
            out[key] = value
        if key == "published" and isinstance(verdict, dict):
            out["verdicts"] = {"value": verdict}
    if isinstance(verdict, dict) and "verdicts" not in out:
        out["verdicts"] = {"value": verdict}
    return out


def _demo_view(summary: dict[str, Any]) -> dict[str, Any]:
    """`trendrec demo`: which parts were blessed and what the pushed version ships, then the status."""
    blessed = summary.get("blessed") or {}
    yes = [p for p, b in blessed.items() if b]
    no = [p for p, b in blessed.items() if not b]
    line = (", ".join(yes) or "no part") + (f" (not blessed: {', '.join(no)})" if no else "")
    ships = ", ".join(f"{p}: {s}" for p, s in (summary.get("ships") or {}).items())
    pushed = (f"{summary.get('version')} ({ships})" if summary.get("pushed") and ships
              else summary.get("version") if summary.get("pushed") else "no")
    rest = {k: v for k, v in summary.items() if k not in {"blessed", "pushed", "version", "ships"}}
    return {"blessed": line, "pushed": pushed} | _status_view(rest)


VIEWS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "evaluate": _judge_view, "push": _push_view, "evaluate-rerank": _ranking_view,
    "status": _status_view, "demo": _demo_view, "value": _value_view,
}
