"""The release rule: judge every part of a training run, and build a version from the verdicts only.

Each model family is one part (recsys.runs.Part): the segment forecaster (recsys.forecast.part), the
next-basket model (recsys.nextbasket.part) and customer value (recsys.value.part). ``judge`` runs each
trained part's judge and records, in every verdict, the production version it was judged against.
``push`` reads those verdicts, and nothing else of a family, the way TFX's Pusher reads the
Evaluator's blessing:

- a run gives a version only when at least one part's verdict is blessed (``decide``);
- each part of the version is what its verdict ships: the run's model, production's part carried
  forward, or the family's baseline (``Verdict.ships``); a part the run did not train keeps
  production's part unchanged;
- the registry builds the version in a staging folder of its own under its lock and refuses verdicts
  judged against a production that has moved since (recsys.registry.push);
- the version records how much segment trends weigh in re-ranking (``registry.TREND_WEIGHT_KEY``), chosen
  on the validation week (the last full week of the log) with the trends of the forecaster it ships, as
  known before that week (recsys.evaluation.coldstart.choose_weight): 0 unless trends give a clear gain
  there (no population worse, 2 %+ better, beyond the week's noise by a paired bootstrap over lists), with
  the reason either way.

    trendrec evaluate --json && trendrec push --json
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from pathlib import Path
from typing import Any

from datetime import date, timedelta

from pipeline import schemas as s
from pipeline.config import Config
from pipeline.errors import TrendrecError
from pipeline.store import Store, read_daily
from recsys import registry
from recsys.evaluation.coldstart import choose_weight
from recsys.evaluation.protocol import before, eligible_targets, weekly_cutoffs
from recsys.runs import (TRAIN_FILE, Part, Run, RunError, Verdict, judged_verdicts, run_ref, seal_verdicts,
                         write_verdict)

log = logging.getLogger(__name__)

PART_MODULES = ("recsys.forecast.part", "recsys.nextbasket.part", "recsys.value.part")  # in release order


class ReleaseError(TrendrecError):
    """A run cannot give a version (nothing judged, or no segment forecaster for a first release)."""


def parts() -> tuple[Part, ...]:
    """Every family's part, imported when asked for (the flow module stays light at import)."""
    return tuple(importlib.import_module(name).PART for name in PART_MODULES)


def trained(run: Run, part: Part) -> bool:
    """Whether the run holds a trained result of ``part`` (its train.json says so)."""
    return (run.part(part.name) / TRAIN_FILE).is_file()


def judge(cfg: Config, run: Run) -> dict[str, Verdict]:
    """Judge every part the run trained; {part: verdict}, each recording the production it was judged against."""
    store = Store(cfg.store)
    pushed = registry.pushed_as(store, run_ref(store, run))
    if pushed:  # its verdicts are part of a version's record: a re-run
        log.info("%s was pushed already (%s): its verdicts stand", run.root, pushed)
        try:
            return verdicts_of(run)
        except RunError as exc:  # a part trained again since: judging this run again cannot change the version
            raise RunError(f"{run.root} was pushed as {pushed}: its verdicts are that version's record, and a part "
                           f"was trained again since, so judging this run again cannot change the version; train "
                           f"into a new run (`trendrec train --run-id NAME`, then the families) and judge that") \
                from exc
    production = registry.read_production(store)
    against = production and production["version"]
    verdicts = {}
    for part in parts():
        if not trained(run, part):
            continue
        verdict = part.judge(cfg, run)
        if verdict.against != against:
            verdict = write_verdict(run.part(part.name), dataclasses.replace(verdict, against=against))
        verdicts[part.name] = verdict
    seal_verdicts(run, list(verdicts))  # the set, whole: until here a push sees the last complete judge's
    return verdicts


def verdicts_of(run: Run) -> dict[str, Verdict]:
    """The verdicts of the run's last complete ``judge`` (recsys.runs.judged_verdicts): what ``push`` decides on."""
    return judged_verdicts(run)


def decide(verdicts: dict[str, Verdict], in_production: bool) -> tuple[bool, str]:
    """(whether the run gives a version, why): some part blessed, and a segment forecaster to ship."""
    if not verdicts:
        return False, "no part of this run was judged: run `trendrec evaluate` first"
    blessed = [v for v in verdicts.values() if v.blessed]
    if not blessed:
        return False, "no part is blessed: " + "; ".join(f"{v.part}: {v.reason}" for v in verdicts.values())
    forecast = verdicts.get("forecast")
    if not in_production and (forecast is None or forecast.ships == "none"):
        return False, "a first release needs a segment forecaster: run `trendrec train` and `trendrec evaluate`"
    kept = [f"{v.part} ships {v.ships}" for v in verdicts.values() if not v.blessed]
    return True, "; ".join(f"{v.part}: {v.reason}" for v in blessed) + (f" ({', '.join(kept)})" if kept else "")


def push(cfg: Config, run: Run, **options: Any) -> dict[str, Any]:
    """Version the run's judged parts and make the version production, when ``decide`` says so.

    ``options`` go to every part's assemble (``lists``: a shop's lists the next-basket model scores too;
    ``sharded``: join the score shards ``prepare_push`` and ``push_shard`` made instead of scoring).
    """
    store = Store(cfg.store)
    verdicts = verdicts_of(run)
    production = registry.production(store)
    pushable, reason = decide(verdicts, production is not None)
    summary = {"run_dir": str(run.root), "verdicts": {n: v.to_json() for n, v in verdicts.items()}}
    if not pushable:
        log.info("not pushing %s: %s", run.root, reason)
        return {"pushed": False, "reason": reason, **summary}
    againsts = {v.against for v in verdicts.values()}
    if len(againsts) > 1:
        raise ReleaseError(f"{run.root}: its parts were judged against different production versions "
                           f"({sorted(map(str, againsts))}): run `trendrec evaluate` again")

    def assemble(staging: Path) -> dict[str, Any]:
        fields = _assemble(cfg, run, staging, verdicts, production, options)
        if verdicts_of(run) != verdicts:  # judged again while the parts were copied: not this set's files
            raise ReleaseError(f"{run.root} was judged again during the push: push again")
        return fields

    result = registry.push(cfg, run_ref(store, run), assemble, against=againsts.pop(), reason=reason)
    if options.get("sharded"):
        from recsys.nextbasket.publish import clear_scores

        clear_scores(run)  # joined into the version (or never needed)
    return result | summary


def prepare_push(cfg: Config, run: Run) -> dict[str, Any]:
    """The sharded push's first step: when the run is pushable, the next-basket part's score shards are
    prepared (recsys.nextbasket.publish.prepare_scores) for ``push_shard`` to fill and ``push(...,
    sharded=True)`` to join; {"shards": [0 ... N-1], ...}."""
    from recsys.nextbasket import publish

    verdicts, production = verdicts_of(run), registry.production(Store(cfg.store))
    pushable, _ = decide(verdicts, production is not None)
    verdict = verdicts.get(publish.PART)
    if not pushable or verdict is None:  # no scores to make: the shards have nothing to do
        publish.clear_scores(run)
        return {"shards": list(range(cfg.customers.shards)), "scores": None}
    return publish.prepare_scores(cfg, run, verdict, production.part(publish.PART) if production else None)


def push_shard(cfg: Config, run: Run, shard: int) -> dict[str, Any]:
    """One shard of the sharded push: the next-basket model's scores of that shard's customers."""
    from recsys.nextbasket.publish import score_shard

    return score_shard(cfg, run, shard)


def _assemble(cfg: Config, run: Run, staging: Path, verdicts: dict[str, Verdict],
              production: registry.Release | None, options: dict[str, Any]) -> dict[str, Any]:
    """Fill ``staging`` part by part; the version's metadata fields."""
    fields: dict[str, Any] = {"parts": {}}
    for part in parts():
        target = staging / part.name
        held = production.part(part.name) if production is not None else None
        verdict = verdicts.get(part.name)
        if verdict is None:
            if held is not None:
                _carry(held, target, part, production)
                fields["parts"][part.name] = _carried_metadata(production, part.name)
            continue
        part_fields = part.assemble(cfg, run, target, verdict, held, **options)
        if part_fields:
            fields["parts"][part.name] = part_fields
    forecast = fields["parts"].get("forecast") or {}
    fields["segments"] = forecast.get("segments")
    fields[registry.TREND_WEIGHT_KEY] = choose_trend_weight(cfg, staging / "forecast", forecast.get("cutoff"))
    return fields


def choose_trend_weight(cfg: Config, forecaster_dir: Path, trained_until: str | None) -> dict[str, Any]:
    """The segment-trend weight of the version: ``choose_weight`` on the last full week of the log, the
    popularity lists re-ranked with the shipped forecaster's trends as of the day before that week; 0
    unless the gain there is clear, and the reason either way. One week only: the shipped forecaster was
    trained on the weeks before it, so an earlier week would judge trends it has already seen."""
    from recsys.forecast.combination import load_forecaster  # TensorFlow: only when a version is built
    from recsys.forecast.trends import compute_trend_scores
    from recsys.nextbasket.judge import judge_events
    from recsys.nextbasket.recommend import retrieved_pairs

    store = Store(cfg.store)
    week, events = _choice_week(cfg, store), None
    if week is not None:  # the events of at most [customers] judge_customers customers, as the judge reads
        events, read = judge_events(cfg, week, None)
        log.info("segment trends: the weight is chosen on the events of %d of %d customers", read["customers"],
                 read["of"])
    off = {"weight": 0.0, "helped": False}
    if week is None or not (forecaster_dir / "combination.json").is_file():
        return off | {"reason": "no event log to choose on or no segment forecaster to take trends from"}
    if trained_until is None or date.fromisoformat(str(trained_until)) >= week:
        return off | {"week_from": week.isoformat(),
                      "reason": f"the forecaster was trained until {trained_until}, into the validation week"}
    daily = read_daily(store)
    seen = daily[daily[s.DATE] < week].reset_index(drop=True)
    trends = compute_trend_scores(load_forecaster(forecaster_dir), seen, week - timedelta(days=1))
    trend = dict(zip(trends[s.SEGMENT].tolist(), trends[s.TREND].astype(float).tolist()))
    users = eligible_targets(events, week)[s.USER_ID].unique()
    candidates = retrieved_pairs(before(events, week), week, users, cfg.customers) if len(users) else None
    choice = choose_weight(events, week, trend, candidates, cfg.rerank.eval_candidates)
    log.info("segment trends: weight %s chosen on the week from %s: %s (NDCG@10 by weight %s)", choice["weight"],
             week, choice["reason"], choice["ndcg@10"])
    return choice


def _choice_week(cfg: Config, store: Store) -> date | None:
    """The first day of the log's last full week (``weekly_cutoffs``), or None without committed events."""
    from recsys.nextbasket.histories import NoCustomerHistoryError, customer_cutoff, open_store

    if not store.committed_raw_files():
        return None
    con = open_store(str(store.root), cfg.customers)
    try:
        return weekly_cutoffs(customer_cutoff(con) - timedelta(days=1), 1)[0]
    except NoCustomerHistoryError:  # no event at all
        return None
    finally:
        con.close()


def _carried_metadata(production: registry.Release, name: str) -> dict[str, Any]:
    """The metadata of a part carried unchanged from production: its own entry (what it ships, its figures)
    and ``carried_from``. For a version pushed before parts existed, the entry is rebuilt from what that
    version's metadata.json said of the model."""
    meta = production.metadata
    if registry.PARTS_KEY in meta:
        own = production.part_metadata(name)
    elif name == "forecast":
        kept = meta.get("segment_forecaster") or {"source": "candidate"}
        ships = {"candidate": "run", "production": "production"}.get(kept.get("source"), kept.get("member"))
        metrics = meta.get("metrics") or {}
        key = {"run": "model"}.get(ships, ships)
        own = {"ships": ships, "holdout_mase": kept.get("holdout_mase", (metrics.get(key) or {}).get("mase")),
               "metrics": metrics, "segments": meta.get("segments"), "cutoff": meta.get("cutoff"),
               "holdout_end": meta.get("holdout_end"), "target": meta.get("target"), "horizon": meta.get("horizon")}
    elif name == "nextbasket":
        own = dict(meta.get("customers") or {})
        own["ships"] = "run" if own.get("model") == "candidate" else "production"
    else:
        own = dict(meta.get("value") or {}) | {"ships": "ensemble"}  # the only forecast versions before parts held
    return own | {"carried_from": production.version}


def _carry(held: Path, target: Path, part: Part, production: registry.Release) -> None:
    """Copy production's part unchanged (a part this run did not train)."""
    other = {production.path / name for name in registry.PART_NAMES} | {
        production.path / sub for sub in registry.LEGACY_PART_DIRS.values() if sub != "."}
    other = {o for o in other if o != held and o not in held.parents}  # other parts' folders inside this one
    names = [p.relative_to(held).as_posix() for p in sorted(held.rglob("*"))
             if p.is_file() and p.name != registry.METADATA_FILE and not any(o in p.parents for o in other)]
    registry.copy_part_files(held, target, names)
    log.info("%s: not trained in this run; %s's part carried forward", part.title, production.version)
