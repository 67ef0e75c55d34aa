"""Combination rules compared on the same member forecasts: dump once, replay every rule.

Choosing how the segment forecaster combines its members (recsys.forecast.combination) needs the
same member forecasts scored under several rules. Refitting the LSTM for each rule costs the whole
multi-shop backtest every time, so this script splits it in two:

- ``--dump DIR`` runs the rolling-origin backtest of benchmarks/forecast_shops.py on each shop with
  every member and keeps, per backtest cut-off, the members' forecasts on the validation cut-offs
  the combination chose its weights on (all before that cut-off) and their forecasts of the
  hold-out days. Nothing in the validation tables comes from after the backtest cut-off.
- ``--replay DIR`` recomputes the combination from those tables under each rule (weights from the
  validation tables only), scores it with recsys.forecast.backtest.score_backtest beside every
  member and prints one table: shop x rule, mean MASE, with the best member and AutoETS.

A rule is ``name[:top_k]``: ``inverse`` (the old default: the top_k by validation MASE, weights
1/MASE), ``inverse2`` (1/MASE²), ``equal`` (the top_k, equal weights), ``select`` (the best one),
``pooled`` (one set of inverse weights per shop from the mean MASE over its segments), ``pooledP``
(the same with weights 1/MASE**P: P = 2, 4, 8 lean harder on the shop's best member) and
``shrunk`` (each segment's validation MASE shrunk half-way to the shop's mean before ``inverse``),
``bestM`` (the product's rule "best" with margin M %, e.g. ``best1.5:3``; ``bestMoN``: on the last N
validation cut-offs only) and ``before`` (the default before "best": pooled8:2 over the LSTM, AutoETS, AutoTheta and
seasonal naive on the LSTM's 3 validation cut-offs, i.e. the published forecast before mstl,
year_ago and the statistical members' extra cut-offs). Pooled, inverse and the others score each
member on all its validation cut-offs (the statistical members on more than the LSTM).
``--hindsight`` adds two bounds that read the hold-out, so no rule can pass them: the member with the
lowest hold-out error per segment and cut-off, and the best fixed weights of the members on a 0.1 grid.
``--explain`` prints, per cut-off, what the default rule saw; ``--data-seed N`` dumps a new draw of the
generated shops.

    flock /tmp/trendrec-cpu.lock nice -n 10 env PYTHONPATH=. python benchmarks/combination_rules.py --dump /tmp/comb
    PYTHONPATH=. python benchmarks/combination_rules.py --replay /tmp/comb
    PYTHONPATH=. python benchmarks/combination_rules.py --replay /tmp/comb --rules pooled8:2 --hindsight
    PYTHONPATH=. python benchmarks/combination_rules.py --replay /tmp/comb --shops synthetic --rules best2:2 --explain
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts, run from anywhere

import forecast_retail  # noqa: E402
import forecast_shops  # noqa: E402

from pipeline import schemas as s  # noqa: E402
from recsys.forecast import backtest as bt  # noqa: E402
from recsys.forecast import choice  # noqa: E402
from recsys.forecast import combination as comb  # noqa: E402
from pipeline.config import CombinationConfig  # noqa: E402
from recsys.forecast.members import LSTM, MEMBERS, SEASONAL_NAIVE  # noqa: E402

BEFORE_MEMBERS = ("lstm", "auto_ets", "auto_theta", "seasonal_naive")  # the members before mstl and year_ago
RULES = ("before", "best1:3", "best2:2", "best0:2", "best5:2", "best2o3:2", "inverse:2", "inverse:3", "inverse:4", "inverse2:2", "inverse2:4", "equal:2", "equal:4", "select",
         "pooled:1", "pooled:2", "pooled:3", "pooled:4", "pooled2:2", "pooled4:2", "pooled8:2", "pooled4:3",
         "shrunk:2", "shrunk:4")
HINDSIGHT_SELECT, HINDSIGHT_WEIGHTS = "hindsight_select", "hindsight_weights"
MEMBER_METHODS = tuple(m for m in forecast_shops.METHODS if m != bt.MODEL)


def dump(out: Path, shops: list[str], n_cutoffs: int, seed: int, overrides: list[str],
         cdnow: Path = forecast_shops.CDNOW, no_lstm: bool = False, data_seed: int = 0) -> None:
    """Backtest each shop with every member; write daily, forecasts and validation tables per shop."""
    captured: list[pd.DataFrame] = []
    original = comb.validation_mase

    def capture(table, *args, **kwargs):
        captured.append(table.copy())
        return original(table, *args, **kwargs)

    comb.validation_mase = capture  # fit_combination looks it up in its module at call time
    for shop in shops:
        config = forecast_retail._config(forecast_shops.SHOP_OVERRIDES.get(shop, []) + overrides, seed)
        loaded = forecast_shops._shop(shop, n_cutoffs, config.horizon, cdnow, data_seed)
        if loaded is None:
            print(f"{shop}: data not found; skipped", flush=True)
            continue
        daily, cutoffs = loaded
        captured.clear()
        members = tuple(m for m in CombinationConfig().members if m != LSTM or not no_lstm)
        methods = tuple(m for m in forecast_shops.METHODS if m in (bt.MODEL, *members))
        forecasts, _ = bt.backtest_forecasts(daily, config, cutoffs, methods=methods,
                                             combination=CombinationConfig(members=members))
        where = out / shop
        where.mkdir(parents=True, exist_ok=True)
        validation = pd.concat([t.assign(**{bt.CUTOFF: c}) for t, c in zip(captured, sorted(cutoffs))],
                               ignore_index=True)
        daily.assign(**{s.DATE: pd.to_datetime(daily[s.DATE])}).to_parquet(where / "daily.parquet")
        forecasts.to_parquet(where / "forecasts.parquet")
        validation.to_parquet(where / "validation.parquet")
        (where / "meta.json").write_text(json.dumps({"target": config.target, "season": 7}))
        print(f"{shop}: dumped {len(forecasts)} forecast cells, {len(validation)} validation cells", flush=True)
    comb.validation_mase = original


def weights_for(rule: str, table: pd.DataFrame, members: list[str]) -> dict[str, dict[str, float]]:
    """{segment or DEFAULT: {member: weight}} under ``rule`` from a validation table (combination.validation_table)."""
    name, _, k = rule.partition(":")
    top_k = int(k or 1)
    if name == "before":  # the rule before "best": pooled8:2 over lstm, auto_ets, auto_theta, seasonal_naive, 3 cut-offs
        table = table[table[comb.ORIGIN].isin(sorted(table[comb.ORIGIN].unique())[-3:])]
        old = [m for m in members if m in BEFORE_MEMBERS]
        return choice.rule_weights(comb.validation_mase(table, old), "pooled", 2, 8.0)
    best = re.fullmatch(r"best(\d+(?:\.\d+)?)?(?:o(\d+))?", name)
    if best:  # the product's rule: bestM (margin M %) oN (the last N validation cut-offs of the statistical members)
        origins = sorted(table[comb.ORIGIN].unique())[-int(best.group(2) or 0):]
        shared, _ = choice.best_weights(table[table[comb.ORIGIN].isin(origins)], members, top_k, 8.0,
                                      float(best.group(1) or 0) / 100)
        return {comb.DEFAULT: shared}
    validation = comb.validation_mase(table, members)
    if name.startswith("pooled"):  # the product's rule: pooled (power 1) or pooledP (weights 1 / MASE ** P)
        return choice.rule_weights(validation, "pooled", top_k, float(name[len("pooled"):] or 1))
    mean = choice.mean_over_segments(validation)
    if name == "shrunk":
        validation = {seg: {m: 0.5 * v + 0.5 * mean[m] for m, v in per.items()} for seg, per in validation.items()}
    weights = {seg: _choose(name, per, top_k) for seg, per in validation.items()}
    return {seg: w for seg, w in weights.items() if w} | {comb.DEFAULT: _choose(name, mean, top_k) or {SEASONAL_NAIVE: 1.0}}


def _choose(name: str, mase: dict[str, float], top_k: int) -> dict[str, float]:
    if name in ("inverse", "shrunk"):
        return choice.choose_weights(mase, "inverse", top_k)
    if name == "select":
        return choice.choose_weights(mase, "select", 1)
    return choice.choose_weights(mase, "inverse", top_k, 0.0 if name == "equal" else 2.0)  # equal | inverse2


def replay(where: Path, rules: list[str], hindsight: bool = False) -> dict[str, float]:
    """{rule or member: mean MASE} of one dumped shop."""
    meta = json.loads((where / "meta.json").read_text())
    daily = pd.read_parquet(where / "daily.parquet")
    daily[s.DATE] = daily[s.DATE].dt.date
    forecasts = pd.read_parquet(where / "forecasts.parquet")
    validation = pd.read_parquet(where / "validation.parquet")
    members = [m for m in MEMBERS if m in validation.columns]
    for rule in rules:
        parts = []
        for cutoff, fc in forecasts.groupby(bt.CUTOFF, sort=True):
            table = validation[validation[bt.CUTOFF] == cutoff].drop(columns=bt.CUTOFF)
            frames = {m: fc[[s.SEGMENT, s.DATE, m]].rename(columns={m: s.FORECAST}) for m in members}
            combined = comb.combine_forecasts(frames, weights_for(rule, table, members))
            parts.append(fc[[s.SEGMENT, s.DATE]].merge(combined, on=[s.SEGMENT, s.DATE], how="left")[s.FORECAST]
                         .to_numpy())
        forecasts[rule] = np.concatenate(parts)
    methods = [*(m for m in MEMBER_METHODS if m in forecasts.columns), bt.MODEL, *rules]
    forecasts, grid = _hindsight(forecasts, members) if hindsight else (forecasts, [])
    scored = bt.score_backtest(forecasts, daily, meta["target"], meta["season"], methods + grid)
    out = {m: scored["overall"].get(m, {}).get("mase", np.nan) for m in [*MEMBER_METHODS, *methods]}
    if hindsight:
        best = min(grid[1:], key=lambda m: scored["overall"][m]["mase"])
        out |= {HINDSIGHT_SELECT: scored["overall"][HINDSIGHT_SELECT]["mase"],
                HINDSIGHT_WEIGHTS: scored["overall"][best]["mase"]}
        print(f"{where.name}: the best fixed weights in hindsight are {best}", flush=True)
    return out


def explain(where: Path) -> None:
    """Print, per backtest cut-off, what the default rule ("best", [combination] defaults) saw on validation:
    the three best members with their mean MASE and cut-offs, the best and the combination on their
    shared cut-offs, and the weights it chose."""
    cfg = CombinationConfig()
    validation = pd.read_parquet(where / "validation.parquet")
    members = [m for m in MEMBERS if m in validation.columns]
    for cutoff, table in validation.groupby(bt.CUTOFF, sort=True):
        weights, seen = choice.best_weights(table.drop(columns=bt.CUTOFF), members, cfg.top_k, cfg.power,
                                            cfg.min_gain)
        top = ", ".join(f"{m} {seen['mase'][m]:.3f} ({seen['origins'][m]})" for m in seen["ranking"][:3])
        print(f"{where.name} {str(cutoff)[:10]}: {top}; best {seen['best_mase_shared']:.4f} vs combination "
              f"{seen['combination_mase_shared']:.4f} on shared cut-offs -> "
              + ", ".join(f"{m} {w:.2f}" for m, w in weights.items()), flush=True)


def _hindsight(forecasts: pd.DataFrame, members: list[str], step: float = 0.1) -> tuple[pd.DataFrame, list[str]]:
    """Columns that leak the hold-out, bounds no rule can pass: HINDSIGHT_SELECT (per segment and
    cut-off the member with the lowest hold-out MAE, hence MASE) and one column per weight vector on a
    ``step`` grid of the simplex (``w:...``; the best of them is the best fixed combination in hindsight).
    Returns the forecasts with those columns and their names."""
    error = {m: (forecasts[m] - forecasts[bt.ACTUAL]).abs().groupby([forecasts[s.SEGMENT], forecasts[bt.CUTOFF]])
             .transform("sum") for m in members}
    values = forecasts[members].to_numpy()
    columns = {HINDSIGHT_SELECT: values[np.arange(len(forecasts)), pd.DataFrame(error).to_numpy().argmin(axis=1)]}
    n = round(1 / step)
    for combo in itertools.product(range(n + 1), repeat=len(members) - 1):
        if sum(combo) <= n:
            w = [c / n for c in combo] + [(n - sum(combo)) / n]
            columns["w:" + ",".join(f"{m}={v:.1f}" for m, v in zip(members, w) if v)] = values @ w
    return pd.concat([forecasts, pd.DataFrame(columns, index=forecasts.index)], axis=1), list(columns)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dump", type=Path, help="run the backtests and write the tables here")
    parser.add_argument("--replay", type=Path, help="replay every rule on the tables written by --dump")
    parser.add_argument("--shops", default=",".join(forecast_shops.SHOPS))
    parser.add_argument("--cutoffs", type=int, default=4, help="cut-offs of the shops other than Online Retail")
    parser.add_argument("--rules", default=",".join(RULES))
    parser.add_argument("--hindsight", action="store_true",
                        help="add two bounds that leak the hold-out: the best member per segment and cut-off, "
                             "and the best fixed weights of the members (a 0.1 grid)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-seed", type=int, default=0,
                        help="added to the generated shops' seeds (synthetic, spikes, yearly): a new draw")
    parser.add_argument("--explain", action="store_true",
                        help="with --replay: per shop and cut-off, what the default rule saw (ranking, MASEs)")
    parser.add_argument("--no-lstm", action="store_true", help="dump the statistical members only (no training)")
    parser.add_argument("--cdnow", type=Path, default=forecast_shops.CDNOW, help="CDNOW_master.txt (the cdnow shop)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="ModelConfig override")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.dump:
        dump(args.dump, args.shops.split(","), args.cutoffs, args.seed, args.set, args.cdnow, args.no_lstm,
             args.data_seed)
    if args.replay:
        rules = args.rules.split(",")
        if args.explain:
            for shop in args.shops.split(","):
                if (args.replay / shop / "meta.json").is_file():
                    explain(args.replay / shop)
        rows = {shop: replay(args.replay / shop, rules, args.hindsight) for shop in args.shops.split(",")
                if (args.replay / shop / "meta.json").is_file()}
        cols = [*MEMBER_METHODS, bt.MODEL, *rules]
        cols += [HINDSIGHT_SELECT, HINDSIGHT_WEIGHTS] if args.hindsight else []
        w = max(15, *(len(c) + 2 for c in cols))
        print(f"{'shop':<14}" + "".join(f"{c:>{w}}" for c in cols))
        for shop, r in rows.items():
            print(f"{shop:<14}" + "".join(f"{r[c]:>{w}.3f}" for c in cols))
        print(f"{'vs best (%)':<14}" + "".join(" " * w for _ in MEMBER_METHODS) + "".join(
            f"{max(100 * (r[c] / np.nanmin([r[m] for m in MEMBER_METHODS]) - 1) for r in rows.values()):>+{w}.1f}"
            for c in cols[len(MEMBER_METHODS):]))
        wins = {c: sum(r[c] < r["auto_ets"] for r in rows.values()) for c in cols[len(MEMBER_METHODS):]}
        print(f"{'beats ETS':<14}" + "".join(" " * w for _ in MEMBER_METHODS)
              + "".join(f"{n:>{w - 2}}/{len(rows)}" for n in wins.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
