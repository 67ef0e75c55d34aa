"""Whether segment trends re-rank, and why: the weight a release chose on its validation week, or the config's.

A push chooses the share of segment trends in the blend on the validation week (recsys.release,
``registry.TREND_WEIGHT_KEY``): the weight with the best NDCG@10 over the cold-start lists among those
with a clear gain over leaving them out (recsys.evaluation.coldstart.choose_weight), else 0, and why.
``rerank.weight`` in the config overrides it. ``trend_weight_status`` says which weight batch re-ranking
and the service use now and where it comes from; ``trend_weight_line`` the sentence `trendrec status` and
the report print.

    trendrec status --json | python -c "import json, sys; print(json.load(sys.stdin)['segment_trends'])"
"""

from __future__ import annotations

from typing import Any

from recsys import registry

_NDCG = "ndcg@10"


def trend_weight_status(release: registry.Release, configured: float | None) -> dict[str, Any]:
    """{weight (what re-ranking uses), source (config | release | none), chosen, helped, week_from,
    ndcg_off, ndcg_chosen, best_weight (the best above 0), ndcg_best, populations, reason (why on or off), rule,
    says (the sentence)} of the
    production ``release``."""
    choice = release.metadata.get(registry.TREND_WEIGHT_KEY)
    out: dict[str, Any] = {"source": "config" if configured is not None else ("release" if choice else "none")}
    if choice:
        figures = {float(w): v for w, v in (choice.get(_NDCG) or {}).items() if v is not None}
        on = [w for w in figures if w > 0]
        best = max(on, key=lambda w: (figures[w], -w)) if on else None  # the best weight that uses trends
        out |= {"chosen": choice.get("weight"), "helped": choice.get("helped"), "week_from": choice.get("week_from"),
                "ndcg_off": figures.get(0.0), "ndcg_chosen": figures.get(float(choice.get("weight") or 0.0)),
                "best_weight": best, "ndcg_best": figures.get(best) if best is not None else None,
                "populations": choice.get("populations"), "reason": choice.get("reason"),
                "rule": choice.get("rule")}
    weight = configured if configured is not None else float((choice or {}).get("weight") or 0.0)
    out["weight"] = weight
    return out | {"says": trend_weight_line(out, release.version)}


def trend_weight_line(info: dict[str, Any], version: str) -> str:
    """One sentence: segment trends on or off, at which weight, and the validation figures behind it."""
    figures = _figures(info)
    if info["source"] == "config":
        chosen = f"; the release chose {info['chosen']:g}{figures}" if info.get("chosen") is not None else ""
        state = "off" if info["weight"] == 0 else f"weight {info['weight']:g}"
        return f"Segment trends {state}: set by the config ([rerank] weight), overriding the release{chosen}."
    if info["source"] == "none":
        return (f"Segment trends off: {version} was pushed without a validation choice of their weight; "
                f"push again to choose it.")
    lists = _lists(info)
    if info.get("helped"):
        if info.get("reason"):  # chosen by the clear-gain rule: the reason carries the figures
            return (f"Segment trends on: weight {info['weight']:g}, chosen on the validation week from "
                    f"{info['week_from']}: {info['reason']}{'; lists: ' + lists if lists else ''}.")
        return (f"Segment trends on: weight {info['weight']:g}, chosen on the validation week from "
                f"{info['week_from']}{figures}.")
    if info.get("reason") and info.get("rule"):  # off by the clear-gain rule: why, on which week
        return (f"Segment trends off: {info['reason']}; week from {info['week_from']}"
                f"{', lists: ' + lists if lists else ''}.")
    why = info.get("reason") or f"did not help on validation{figures}"
    return f"Segment trends off: {why}."


def _figures(info: dict[str, Any]) -> str:
    """' (NDCG@10 x at weight w vs y without trends, over ...)' or ''."""
    if info.get("ndcg_off") is None or info.get("ndcg_best") is None:
        return ""
    lists = _lists(info)
    return (f" (NDCG@10 {info['ndcg_best']:.4f} with trends at their best weight, {info['best_weight']:g}, vs "
            f"{info['ndcg_off']:.4f} without trends" + (f"; lists: {lists}" if lists else "") + ")")


def _lists(info: dict[str, Any]) -> str:
    """'31 new customers, 49 guest orders' from the lists per population of the choice, or ''."""
    return ", ".join(f"{n} {p.replace('_', ' ')}" for p, n in (info.get("populations") or {}).items())
