"""The cold-start protocol: the lists nobody's history can order, where segment trends are what re-ranks.

The customer model scores the candidates it retrieves for known, active customers; everything else a
shop shows is ordered by the trend path of the blend rule (recsys.rank.blend): new customers, guests
and the items of a known customer's list the model did not score. This protocol measures those lists
on the next-basket protocol's weekly cut-offs (recsys.evaluation.protocol), one population at a time:

- ``new_customers``: customers whose first purchase falls in the target week [cutoff, cutoff + 7);
  targets are the distinct items they buy in it;
- ``guest_orders``: each guest order (null user_id, an order_id) of the target week is one basket and
  one list; absent when the log has no order ids;
- ``outside_candidates``: each customer the protocol counts (bought in the 28 days before and buys in
  the week), with only their target items outside the candidates the customer model scores for them;
  absent when no candidates are given.

A method is an ``Ranking``: ``ranking(events, cutoff) -> pd.Series`` of item scores, best first, from the
events before the cut-off only; the same list goes to every list of a population, minus, for
``outside_candidates``, the customer's scored candidates. Methods defined here: ``popularity`` (distinct
buyers in the 28 days before, a guest order counting as one buyer: g_topfreq's count, which also sees
guests), ``rising`` (item-level growth: distinct buyers in the last 28 days minus the 28 before, risers
first, then the rest by recent buyers) and ``trend_ranking`` (the popularity list re-ranked by segment
trends with the blend rule at a weight; ``trend_scorer`` scores it, for ``outside_candidates`` per customer
on the popular items left once their scored candidates are out). ``choose_weight`` picks that weight on one
week: the weight of ``GRID`` with the best mean NDCG@10 over the populations among those with a clear gain
over weight 0 (no population worse, 2 %+ better pooled, beyond the week's noise by a paired bootstrap),
else 0. Figures per population: Recall@10, NDCG@10, PHR@10 and the number of lists
(recsys.evaluation.metrics).

    python -c "from recsys.evaluation.coldstart import GRID; print(GRID)"
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from pipeline import schemas as s
from recsys.evaluation import metrics
from recsys.evaluation.protocol import ACTIVE_DAYS, K, SCORE, TARGET_DAYS, before, eligible_targets
from recsys.rank.blend import blend

log = logging.getLogger(__name__)

POPULATIONS = ("new_customers", "guest_orders", "outside_candidates")
GRID = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0)  # segment-trend weights a release chooses among
MIN_LISTS = 30  # a population with fewer lists of the week does not count in the choice
MIN_GAIN = 0.02  # the pooled NDCG gain over weight 0, relative, that trends must reach to be on
ALPHA = 0.05  # one-sided level of the bootstrap bound, shared among the weights tried (Bonferroni)
RESAMPLES = 2000  # bootstrap resamples of the lists
SEED = 0  # the bootstrap's seed: the same log gives the same choice
RULE = (f"on only with a clear gain: every population with {MIN_LISTS}+ lists as good as without trends, the "
        f"pooled NDCG@10 {MIN_GAIN:.0%}+ higher, and a paired bootstrap bound over lists (one-sided 95 %, "
        f"Bonferroni over the weights) above 0")
RESULT_KEYS = ("recall", "ndcg", "phr")
GUEST_PREFIX = "order:"  # a guest order's list id
Ranking = Callable[[pd.DataFrame, date], pd.Series]
Candidates = Callable[[pd.DataFrame, date, np.ndarray], pd.DataFrame]  # (events, cutoff, users) -> pairs


def population_targets(events: pd.DataFrame, cutoff: date,
                       candidates: pd.DataFrame | None) -> dict[str, pd.DataFrame | None]:
    """{population: distinct (user_id, item_id) targets, the list id in user_id}; None: not measurable."""
    day = pd.to_datetime(events[s.EVENT_DATE])
    buys = events[(events[s.QUANTITY] > 0)]
    day = day[buys.index]
    week = (day >= pd.Timestamp(cutoff)) & (day < pd.Timestamp(cutoff + timedelta(days=TARGET_DAYS)))
    known = buys[s.USER_ID].notna()
    first = day[known].groupby(buys.loc[known, s.USER_ID]).min()
    new_users = first.index[(first >= pd.Timestamp(cutoff)) & (first < pd.Timestamp(cutoff + timedelta(days=7)))]
    new = buys.loc[week & known & buys[s.USER_ID].isin(new_users), [s.USER_ID, s.ITEM_ID]]
    out: dict[str, pd.DataFrame | None] = {"new_customers": _distinct(new)}
    has_orders = s.ORDER_ID in events.columns and events[s.ORDER_ID].notna().any()
    guests = buys[week & ~known & (buys[s.ORDER_ID].notna() if has_orders else False)]
    out["guest_orders"] = _distinct(pd.DataFrame({
        s.USER_ID: GUEST_PREFIX + guests[s.ORDER_ID].astype(str), s.ITEM_ID: guests[s.ITEM_ID]})) \
        if has_orders else None
    if candidates is None:
        out["outside_candidates"] = None
    else:
        targets = eligible_targets(events, cutoff)
        out["outside_candidates"] = _distinct(_without(targets, candidates))
    return out


def popularity(events: pd.DataFrame, cutoff: date) -> pd.Series:
    """Items by distinct buyers in the 28 days before ``cutoff`` (a guest order is one buyer), best first."""
    return _by(_buyers(events, cutoff, ACTIVE_DAYS))


def rising(events: pd.DataFrame, cutoff: date) -> pd.Series:
    """Items whose distinct buyers grew most from the 28 days before the last 28 to the last 28, then the
    rest by recent buyers; score = growth where it is positive, else a rank below every riser."""
    recent = _buyers(events, cutoff, ACTIVE_DAYS)
    prev = _buyers(events, cutoff - timedelta(days=ACTIVE_DAYS), ACTIVE_DAYS).reindex(recent.index, fill_value=0)
    growth = recent - prev
    riser = (growth > 0).astype(float)
    order = pd.DataFrame({"_r": riser, "_g": growth.where(growth > 0, 0), "_n": recent}, index=recent.index)
    order = order.rename_axis(s.ITEM_ID).reset_index()
    order = order.sort_values(["_r", "_g", "_n", s.ITEM_ID], ascending=[False, False, False, True], kind="mergesort")
    return pd.Series(np.arange(len(order), 0, -1, dtype=float), index=order[s.ITEM_ID].to_numpy(object))


def trend_ranking(base: pd.Series, segments: Mapping[object, object], trends: Mapping[object, float],
                  weight: float) -> pd.Series:
    """``base`` (item -> score, one list) re-ranked by the blend rule with its items' segment trends."""
    items = base.index.to_numpy(object)
    trend = np.fromiter((trends.get(segments.get(i), math.nan) for i in items), float, len(items))
    ranked = blend(np.zeros(len(items), np.int64), base.to_numpy(float), trend, np.full(len(items), np.nan),
                   weight, 1.0)
    return pd.Series(np.arange(len(items), 0, -1, dtype=float), index=items[ranked.order])


def item_segments(events: pd.DataFrame) -> dict[object, object]:
    """{item_id: its segment on its latest event} (how ingest assigns items, pipeline.lists reads them)."""
    rows = events[[s.ITEM_ID, s.SEGMENT, s.EVENT_DATE]].sort_values(s.EVENT_DATE, kind="mergesort")
    return dict(rows.drop_duplicates(s.ITEM_ID, keep="last").set_index(s.ITEM_ID)[s.SEGMENT].items())


def score_ranking(ranking: pd.Series, targets: pd.DataFrame, exclude: pd.DataFrame | None,
                  k: int = K) -> pd.DataFrame:
    """score_users rows of one shared ranking given to every list of ``targets``, minus ``exclude`` pairs."""
    return score_lists(_copies(ranking, targets, k, exclude), targets, exclude, k)


def trend_scorer(popular: pd.Series, segments: Mapping[object, object], trends: Mapping[object, float],
                 targets: pd.DataFrame, exclude: pd.DataFrame | None, n: int,
                 k: int = K) -> Callable[[float], pd.DataFrame]:
    """weight -> score_users rows of ``popular``'s top ``n`` re-ranked by segment trends at that weight, for
    every list of ``targets``. With ``exclude`` (a customer's scored candidates) each list's top ``n`` is
    taken once its own excluded pairs are out: those are the items the shop's list still shows that customer,
    so at weight 0 the list is ``popular``'s own (a shared top ``n`` would leave a customer who was scored on
    most of it almost nothing to rank). The lists are built once; each weight only re-ranks them."""
    if exclude is None:
        top = popular.head(n)
        return lambda weight: score_ranking(trend_ranking(top, segments, trends, weight), targets, None, k)
    frame = _without(_copies(popular, targets, n, exclude), exclude)
    frame = frame.groupby(s.USER_ID, sort=False).head(n).reset_index(drop=True)
    item_trend = {i: trends.get(segments.get(i), math.nan) for i in frame[s.ITEM_ID].unique()}
    trend = frame[s.ITEM_ID].map(item_trend).to_numpy(float)
    codes, base = pd.factorize(frame[s.USER_ID])[0], frame[SCORE].to_numpy(float)
    prob = np.full(len(frame), np.nan)  # no customer-model probability: the trend path of the blend

    def score(weight: float) -> pd.DataFrame:
        ranked = blend(codes, base, trend, prob, weight, 1.0)
        ranked_lists = frame.iloc[ranked.order].assign(**{SCORE: -ranked.rank.astype(float)})
        return score_lists(ranked_lists, targets, None, k)
    return score


def score_lists(frame: pd.DataFrame, targets: pd.DataFrame, exclude: pd.DataFrame | None,
                k: int = K) -> pd.DataFrame:
    """score_users rows of per-list (user_id, item_id, score) lists, ``exclude`` pairs left out, top ``k``."""
    if exclude is not None:
        frame = _without(frame, exclude)
    frame = frame[frame[s.USER_ID].isin(targets[s.USER_ID].unique())]
    frame = frame.sort_values([s.USER_ID, SCORE, s.ITEM_ID], ascending=[True, False, True], kind="mergesort")
    frame = frame.groupby(s.USER_ID, sort=False).head(k).copy()
    frame[s.RANK] = frame.groupby(s.USER_ID, sort=False).cumcount() + 1
    return metrics.score_users(frame, targets, targets.iloc[:0], k)


def summary(rows: list[pd.DataFrame], k: int = K) -> dict[str, float | int | None]:
    """Recall, NDCG, PHR @k and the number of lists over score_users rows (None over no list)."""
    per = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=list(metrics.METRICS))
    out: dict[str, float | int | None] = {f"{key}@{k}": float(per[key].mean()) if len(per) else None
                                          for key in RESULT_KEYS}
    return out | {"lists": int(len(per))}


def choose_weight(events: pd.DataFrame, cutoff: date, trends: Mapping[object, float],
                  candidates: pd.DataFrame | None, n: int, grid: tuple[float, ...] = GRID,
                  k: int = K) -> dict[str, Any]:
    """The segment-trend weight of ``grid`` for the week from ``cutoff`` (popularity's top ``n`` re-ranked by
    ``trends``, which must be known before ``cutoff``): 0 unless trends give a clear gain there.

    The rule (one week of lists is noisy; a one-week gain often reverses the week after, so trends are on
    only where the week shows more than noise). Only populations with at least ``MIN_LISTS`` lists count;
    NDCG@k is the mean over them of each population's mean. A weight w > 0 gives a clear gain when
    (a) no counted population's NDCG@k is lower at w than at 0;
    (b) the pooled NDCG@k at w is at least ``MIN_GAIN`` (2 %) above weight 0's, relatively;
    (c) the gain is beyond the noise of the week: its paired bootstrap over lists (each population's lists
        resampled on their own, ``RESAMPLES`` times, seed ``SEED``) has its ``ALPHA`` / (weights tried)
        quantile above 0 (one-sided 95 %, Bonferroni over the weights, since the best of several is taken).
    The weight is the one with the best pooled NDCG@k among those with a clear gain; 0 where none has one.
    Returns weight, helped, reason (a sentence: why on or off), the week, per-weight NDCG@k (counted
    populations), per-weight ``gains`` (relative gain, bootstrap lower bound, populations worse) and the
    lists per population (every population of the week, counted or not)."""
    seen = before(events, cutoff)
    targets = {p: t for p, t in population_targets(events, cutoff, candidates).items() if t is not None and len(t)}
    lists = {p: int(t[s.USER_ID].nunique()) for p, t in targets.items()}
    counted = {p: t for p, t in targets.items() if lists[p] >= MIN_LISTS}
    popular, segments = popularity(seen, cutoff), item_segments(seen)
    scorers = {p: trend_scorer(popular, segments, trends, t, candidates if p == "outside_candidates" else None,
                               n, k) for p, t in counted.items()}
    per = {weight: {p: score(weight).sort_values(s.USER_ID)["ndcg"].to_numpy(float)
                    for p, score in scorers.items()} for weight in grid}
    ndcg = {w: float(np.mean([v.mean() for v in by.values()])) if by else None for w, by in per.items()}
    tried = [w for w in grid if w > 0]
    gains = {w: _gain(per[0.0], per[w], len(tried)) for w in tried} if counted and 0.0 in per else {}
    clear = [w for w, g in gains.items() if g["clear"]]
    weight = max(clear, key=lambda w: (ndcg[w], -w), default=0.0)
    return {"weight": weight, "helped": bool(clear), "week_from": cutoff.isoformat(),
            "reason": _reason(weight, ndcg, gains, lists, k), "rule": RULE,
            f"ndcg@{k}": {str(w): v for w, v in ndcg.items()},
            "gains": {str(w): {key: v for key, v in g.items() if key != "clear"} for w, g in gains.items()},
            "populations": lists}


def _gain(off: dict[str, np.ndarray], on: dict[str, np.ndarray], tried: int) -> dict[str, Any]:
    """{relative (pooled NDCG gain over weight 0's), lower (the bootstrap bound of the absolute gain),
    worse (counted populations lower at this weight), clear} of one weight; see ``choose_weight``."""
    pooled_off = float(np.mean([v.mean() for v in off.values()]))
    pooled_on = float(np.mean([v.mean() for v in on.values()]))
    relative = pooled_on / pooled_off - 1.0 if pooled_off > 0 else (math.inf if pooled_on > 0 else 0.0)
    worse = [p for p in off if on[p].mean() < off[p].mean() - 1e-12]
    rng = np.random.default_rng(SEED)
    resampled = np.mean([_resampled_means(on[p] - off[p], rng, RESAMPLES) for p in off], axis=0)
    lower = float(np.quantile(resampled, ALPHA / tried))
    clear = not worse and relative >= MIN_GAIN and lower > 0
    return {"relative": round(relative, 6) if math.isfinite(relative) else None, "lower": round(lower, 6),
            "worse": worse, "clear": clear}


def _resampled_means(diff: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """Means of ``resamples`` bootstrap resamples of ``diff`` (with replacement, its own size). Only non-zero
    differences move a mean (most lists are unchanged by a small weight), so each resample draws how many
    of its picks land on one (binomial), then which: exact, and cheap on a shop with many lists."""
    nonzero = diff[diff != 0]
    if not len(nonzero):
        return np.zeros(resamples)
    picks = rng.binomial(len(diff), len(nonzero) / len(diff), resamples)
    values = nonzero[rng.integers(0, len(nonzero), int(picks.sum()))]
    sums = np.bincount(np.repeat(np.arange(resamples), picks), weights=values, minlength=resamples)
    return sums / len(diff)


def _reason(weight: float, ndcg: dict[float, float | None], gains: dict[float, dict[str, Any]],
            lists: dict[str, int], k: int) -> str:
    """Why trends are on or off, in one clause (``trendrec status`` prints it)."""
    if not gains:
        return (f"too few lists to tell: no population of the week has {MIN_LISTS} "
                f"({', '.join(f'{n} {p}' for p, n in lists.items()) or 'none'})").replace("_", " ")
    off = ndcg[0.0]
    shown = weight if weight > 0 else max(gains, key=lambda w: (ndcg[w], -w))
    g = gains[shown]
    figures = f"NDCG@{k} {ndcg[shown]:.4f} at weight {shown:g} vs {off:.4f} without trends"
    if weight > 0:
        return (f"a clear gain ({figures}, +{g['relative']:.1%}; no population worse; the gain's bootstrap "
                f"lower bound +{g['lower']:.4f})")
    if ndcg[shown] <= off:
        return f"did not help on validation (best {figures})"
    short = math.floor((g["relative"] or 0) * 1000) / 1000  # rounded down: +1.96 % must not read "+2.0 %"
    why = [f"+{short:.1%} is under the {MIN_GAIN:.0%} asked for"] if (g["relative"] or 0) < MIN_GAIN else []
    why += [f"within the week's noise (the gain's bootstrap lower bound {g['lower']:+.4f})"] if g["lower"] <= 0 else []
    why += [f"worse on {', '.join(g['worse'])}".replace("_", " ")] if g["worse"] else []
    return f"no clear gain on validation ({figures}: {'; '.join(why) or 'no weight passed every test'})"


def _buyers(events: pd.DataFrame, cutoff: date, days: int) -> pd.Series:
    """item -> distinct buyers (a customer, else a guest order, else a guest line) in [cutoff - days, cutoff)."""
    day = pd.to_datetime(events[s.EVENT_DATE])
    rows = events[(events[s.QUANTITY] > 0) & (day >= pd.Timestamp(cutoff - timedelta(days=days)))
                  & (day < pd.Timestamp(cutoff))]
    who = rows[s.USER_ID].astype(object)
    if s.ORDER_ID in rows.columns:
        who = who.where(who.notna(), GUEST_PREFIX + rows[s.ORDER_ID].astype(object).astype(str))
        who = who.where(rows[s.USER_ID].notna() | rows[s.ORDER_ID].notna(), None)
    who = who.where(who.notna(), "line:" + pd.Series(rows.index.astype(str), index=rows.index))
    return pd.DataFrame({s.ITEM_ID: rows[s.ITEM_ID], "_who": who}).drop_duplicates().groupby(s.ITEM_ID).size()


def _by(counts: pd.Series) -> pd.Series:
    """Counts sorted best first, ties by item id, as float scores indexed by item."""
    frame = counts.rename("_n").rename_axis(s.ITEM_ID).reset_index()
    frame = frame.sort_values(["_n", s.ITEM_ID], ascending=[False, True], kind="mergesort")
    return pd.Series(frame["_n"].to_numpy(float), index=frame[s.ITEM_ID].to_numpy(object))


def _copies(ranking: pd.Series, targets: pd.DataFrame, depth: int, exclude: pd.DataFrame | None) -> pd.DataFrame:
    """(user_id, item_id, score) rows: ``ranking``'s top ``depth`` for every list of ``targets``, deeper by the
    most pairs ``exclude`` holds for one list, so that ``depth`` items are left once they are out."""
    lists = targets[s.USER_ID].drop_duplicates().to_numpy(object)
    extra = int(exclude.groupby(s.USER_ID).size().max()) if exclude is not None and len(exclude) else 0
    top = ranking.head(depth + extra)
    return pd.DataFrame({s.USER_ID: np.repeat(lists, len(top)), s.ITEM_ID: np.tile(top.index.to_numpy(object),
                                                                                   len(lists)),
                         SCORE: np.tile(top.to_numpy(float), len(lists))})


def _distinct(pairs: pd.DataFrame) -> pd.DataFrame:
    pairs = pairs[[s.USER_ID, s.ITEM_ID]].astype(object).drop_duplicates()
    return pairs.sort_values([s.USER_ID, s.ITEM_ID], kind="mergesort").reset_index(drop=True)


def _without(frame: pd.DataFrame, exclude: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` whose (user_id, item_id) pair is not in ``exclude``."""
    pairs = exclude[[s.USER_ID, s.ITEM_ID]].astype(str).drop_duplicates().assign(_x=True)
    keys = frame[[s.USER_ID, s.ITEM_ID]].astype(str)
    hit = keys.merge(pairs, on=[s.USER_ID, s.ITEM_ID], how="left")["_x"].fillna(False).to_numpy(bool)
    return frame[~hit]
