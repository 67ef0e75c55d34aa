"""The customer value family as the release sees it: ``PART`` (train, judge, assemble) over ``<run>/value/``.

- ``train(cfg, run, horizon_days=None)``: recsys.value.stage's steps in three steps of its own, which the
  DAG runs as tasks: ``prepare`` fits the members (``fit_value``) into a fresh sibling folder
  ``<run>/.value.<random>/``, renamed ``<run>/.value.sharded/`` when fitted; ``forecast_shard`` (one per
  shard of ``customers.shards``, in any order or side by side) scores its customers into its own file
  there; ``finish`` joins them, writes train.json last with the fingerprint of the effective [value]
  settings and of the raw log (its commits and last event day) and swaps the folder into
  ``<run>/value/`` whole: the old set is renamed aside, the new one in, the old one deleted. A killed
  run leaves the old set or none, never a mix. A re-run reuses the set only when its fingerprint is
  the same (``"reused": True``); any changed setting (horizon, seed, ...) or new data recomputes; the
  number of shards is not in the fingerprint (the set's bytes do not depend on it).
- ``judge(cfg, run)``: reads the figures train stored and writes verdict.json: blessed when the
  ensemble is no worse than BG/NBD + GG on Spearman, normalized Gini, top-decile capture and
  |total error| on the validation window (the last H days of the log, members fitted before it);
  ``ships`` is the model whose forecast value.parquet holds (recsys.value.choice).
- ``assemble(cfg, run, target, verdict, production)``: copies the run's value files into ``target``.

``run_value_command`` is `trendrec value`'s body: train, judge, and the `--json` object.

    trendrec value --horizon-days 30 --json
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pipeline.config import Config, ValueConfig
from pipeline.store import Store, read_json, removed_on_failure, write_json
from recsys import registry, runs
from recsys.runs import FINGERPRINT_KEY, TRAIN_FILE, Part, Run, Verdict
from recsys.value.bgnbd import ValueFitError
from recsys.value.choice import BASELINE, RULE_FIGURES
from recsys.value.data import ValueModelError, last_event_day, open_value_store
from recsys.value.ensemble import ENSEMBLE
from recsys.value.stage import (
    MODELS_FILE,
    SUMMARY_FILE,
    VALUE_FILE,
    finish_value,
    fit_value,
    json_object,
    load_members,
    write_forecast_shard,
)

log = logging.getLogger(__name__)

NAME = "value"  # the part's folder in a run and in a version
FILES = (VALUE_FILE, SUMMARY_FILE, MODELS_FILE)  # what a version's value folder must hold
PENDING_TRAIN = "train.pending.json"  # train.json of a prepared set until its forecast is joined


def effective_config(cfg: Config, horizon_days: int | None = None) -> ValueConfig:
    """The [value] settings a train uses: the config's, with ``horizon_days`` when given."""
    return dataclasses.replace(cfg.value, horizon_days=horizon_days) if horizon_days else cfg.value


def value_fingerprint(store: Store, vcfg: ValueConfig, last_day: date) -> str:
    """The fingerprint of a value set: its effective settings and the raw log it read."""
    inputs = {"raw": runs.raw_inputs(store), "last_event_day": last_day.isoformat()}
    return runs.fingerprint(settings=dataclasses.asdict(vcfg), inputs=inputs)


def stored_train(part_dir: Path) -> dict[str, Any] | None:
    """The set's train.json, or None when there is no complete set."""
    path = part_dir / TRAIN_FILE
    if not path.is_file():
        return None
    try:
        return read_json(path)
    except (OSError, ValueError) as exc:
        log.warning("%s cannot be read (%s): the value set is computed again", path, exc)
        return None


def train(cfg: Config, run: Run, *, horizon_days: int | None = None, **_: Any) -> dict[str, Any]:
    """Compute the value set into ``run.part("value")`` as one set, or reuse it (see the module doc): the
    sharded DAG's three steps in one process (``prepare``, every ``forecast_shard`` in turn, ``finish``)."""
    prepared = prepare(cfg, run, horizon_days=horizon_days)
    try:
        for shard in prepared["shards"]:
            forecast_shard(cfg, run, shard)
        return finish(cfg, run)
    except BaseException:  # in one process nothing retries a shard: leave the old set and nothing else
        shutil.rmtree(sharded_folder(run), ignore_errors=True)
        raise


def prepare(cfg: Config, run: Run, *, horizon_days: int | None = None, **_: Any) -> dict[str, Any]:
    """The sharded train's first step: reuse the set when its fingerprint is the same, else fit the members
    into ``<run>/.value.sharded/`` (recsys.value.stage.fit_value) with a pending train.json naming the
    fingerprint and the number of shards (``customers.shards``). {"shards": [0 ... N-1], "reused": ...}."""
    vcfg, store, shards = effective_config(cfg, horizon_days), Store(cfg.store), cfg.customers.shards
    con = open_value_store(str(store.root), vcfg)
    try:
        last_day = last_event_day(con)
        fp, out = value_fingerprint(store, vcfg, last_day), run.part(NAME)
        done = stored_train(out)
        if done is not None and done.get(FINGERPRINT_KEY) == fp:
            log.info("customer value in %s already computed from the same settings and log; reusing it", out)
            shutil.rmtree(sharded_folder(run), ignore_errors=True)  # a failed attempt's fit: not this set
            return {"shards": list(range(done.get("shards", 1))), "reused": True}
        building, held = runs.part_staging(run, NAME)  # flock-ed: a concurrent start leaves it alone
        try:
            record = _build(con, store, vcfg, last_day + timedelta(days=1), building, run)
            write_json(record | {FINGERPRINT_KEY: fp, "shards": shards}, building / PENDING_TRAIN)
            shutil.rmtree(sharded_folder(run), ignore_errors=True)  # an earlier attempt's fit
            os.rename(building, sharded_folder(run))
        finally:
            shutil.rmtree(building, ignore_errors=True)
            os.close(held)
    finally:
        con.close()
    return {"shards": list(range(shards)), "reused": False}


def sharded_folder(run: Run) -> Path:
    """Where ``prepare`` leaves the fitted set for the forecast shards and ``finish`` (a ``.value.*`` entry:
    the next ``prepare`` of the run removes what a failed attempt left)."""
    return run.root / f".{NAME}.sharded"


def forecast_shard(cfg: Config, run: Run, shard: int, **_: Any) -> dict[str, Any]:
    """Score shard ``shard`` of the prepared set into its own file (a re-run replaces it); nothing to do
    when ``prepare`` reused the set or fitted nothing."""
    folder = sharded_folder(run)
    pending = _pending(run)
    if pending is None:
        return {"shard": shard, "reused": True}
    if not pending.get("trained"):
        return {"shard": shard, "trained": False}
    vcfg = ValueConfig(**pending["settings"])
    members, weights = load_members(folder, vcfg)
    con = open_value_store(cfg.store, vcfg)
    try:
        return write_forecast_shard(con, members, weights, vcfg, folder, shard, pending["shards"])
    finally:
        con.close()


def finish(cfg: Config, run: Run, **_: Any) -> dict[str, Any]:
    """The sharded train's last step: join the shards of this run's prepared set (a missing one is refused),
    write train.json last and swap the set into ``run.part("value")``; the train summary."""
    out, folder = run.part(NAME), sharded_folder(run)
    record = _pending(run)
    if record is None:
        return _summary(out, stored_train(out)) | {"reused": True}
    if record.get("trained"):
        finish_value(folder, record["shards"])
    write_json(record, folder / TRAIN_FILE)  # last: marks the set complete
    (folder / PENDING_TRAIN).unlink()
    runs.switch_folder(folder, out)
    return _summary(out, record) | {"reused": False}


def _pending(run: Run) -> dict[str, Any] | None:
    """The prepared set's pending train.json; None when ``prepare`` reused the set (raises when neither is there)."""
    path = sharded_folder(run) / PENDING_TRAIN
    if path.is_file():
        return read_json(path)
    if stored_train(run.part(NAME)) is not None:
        return None
    raise ValueModelError(f"no prepared value set in {sharded_folder(run)}: run the value part's prepare first")


def _build(con, store: Store, vcfg: ValueConfig, end: date, folder: Path, run: Run) -> dict[str, Any]:
    """The fitted set in ``folder`` (recsys.value.stage.fit_value); the train.json record (without the
    fingerprint)."""
    folder.mkdir(parents=True, exist_ok=True)
    tensorboard = store.ensure().runs / f"{run.run_id}-{NAME}"
    settings = dataclasses.asdict(vcfg)
    try:
        with removed_on_failure(tensorboard):  # TensorFlow's event files of a failed fit (a full disk) go too
            summary = fit_value(con, vcfg, end, folder, tensorboard)
    except ValueFitError as exc:
        log.warning("no customer value forecast: %s", exc)
        return {"trained": False, "reason": f"no customer value forecast: {exc}", "settings": settings}
    return {"trained": True, "published": summary["published"], "settings": settings,
            "calibration_end": summary["calibration_end"], "forecast_cutoff": end.isoformat()}


def _summary(out: Path, record: dict[str, Any]) -> dict[str, Any]:
    """What train returns: value.json without the deciles (or why nothing was trained)."""
    if not record.get("trained"):
        return {"trained": False, "reason": record.get("reason"), "part_dir": str(out)}
    summary = {k: v for k, v in read_json(out / SUMMARY_FILE).items() if k != "deciles"}
    return summary | {"trained": True, "part_dir": str(out), "output": str(out / VALUE_FILE)}


def judge(cfg: Config | None, run: Run) -> Verdict:
    """The value verdict from the figures train stored, written to ``<run>/value/verdict.json``.

    Blessed when the ensemble qualifies on the validation window (the last H days of the log, members
    fitted before it); ``ships`` names what value.parquet holds: "ensemble", or the member published.
    """
    out = run.part(NAME)
    record = stored_train(out)
    if record is None:
        raise ValueModelError(f"no value set in {out}: run `trendrec value` (the value part's train) first")
    if not record.get("trained"):
        return runs.write_verdict(out, Verdict(NAME, False, "spearman", None, BASELINE, None,
                                               str(record.get("reason")), ships="production",
                                               details={FINGERPRINT_KEY: record.get(FINGERPRINT_KEY)}))
    summary = read_json(out / SUMMARY_FILE)
    figures, ships = summary["models"], summary["published"]
    shipped, base = figures[ships], figures[BASELINE]
    return runs.write_verdict(out, Verdict(
        NAME, ships == ENSEMBLE, "spearman", shipped.get("spearman"), BASELINE, base.get("spearman"),
        _reason(summary, ships, shipped, base), ships=ships,
        details={"window": _window(summary), "figures": figures, FINGERPRINT_KEY: record.get(FINGERPRINT_KEY)}))


def _window(summary: dict[str, Any]) -> dict[str, Any]:
    first = date.fromisoformat(summary["calibration_end"]) + timedelta(days=1)
    return {"first_day": first.isoformat(), "days": summary["holdout_days"], "customers": summary["customers"]}


def _reason(summary: dict[str, Any], ships: str, shipped: dict[str, float], base: dict[str, float]) -> str:
    pairs = ", ".join(f"{k} {shipped.get(k, float('nan')):.3f} vs {base.get(k, float('nan')):.3f}" for k in RULE_FIGURES)
    window = f"the last {summary['holdout_days']} days of the log"
    if ships == ENSEMBLE:
        return f"the ensemble is no worse than {BASELINE} on all four figures on {window} ({pairs}): it ships"
    ensemble = summary["models"][ENSEMBLE]
    worse = ", ".join(f"{k} {ensemble.get(k, float('nan')):.3f} vs {base.get(k, float('nan')):.3f}"
                      for k in RULE_FIGURES)
    why = (f"{ships} ships: it is no worse than {BASELINE} on all four ({pairs})" if ships != BASELINE
           else f"{BASELINE} ships: no member is no worse than it on all four")
    return f"the ensemble is worse than {BASELINE} on {window} ({worse}); {why}"


def assemble(cfg: Config | None, run: Run, target: Path, verdict: Verdict, production: Path | None,
             **_: Any) -> dict[str, Any]:
    """Copy the run's value files into ``target`` (the version's value folder); the part's metadata fields.

    Without a value forecast in the run: production's value files when ``production`` is given
    (``"ships": "production"``), else nothing ({} and no ``target``). Regular files only, never a symlink.
    """
    source = run.part(NAME)
    record = stored_train(source)
    if record is None or not record.get("trained") or not all((source / f).is_file() for f in FILES):
        if production is None or not (production / VALUE_FILE).is_file():
            return {}
        _copy_set(production, target)
        return {"ships": "production", "carried_from": str(production), "verdict": verdict.to_json()}
    if verdict.details.get(FINGERPRINT_KEY) != record.get(FINGERPRINT_KEY):
        raise ValueModelError(f"{source / runs.VERDICT_FILE} judges an earlier value set: judge the run again")
    _copy_set(source, target)
    summary = read_json(source / SUMMARY_FILE)
    return {"ships": verdict.ships, "verdict": verdict.to_json(), "holdout_days": summary["holdout_days"],
            "models": summary["models"], "forecast_cutoff": summary["forecast"]["cutoff"]}


def _copy_set(source: Path, target: Path) -> None:
    """Every regular file directly in ``source`` (folders and links left out) into ``target``, the registry's way."""
    registry.copy_part_files(source, target, [p.name for p in sorted(source.iterdir())
                                              if p.is_file() and not p.is_symlink()])


def train_and_judge(cfg: Config, run: Run, *, horizon_days: int | None = None) -> dict[str, Any]:
    """train then judge: the summary with the verdict (as JSON); the judge is rerun on a reused set."""
    summary = train(cfg, run, horizon_days=horizon_days)
    verdict = judge(cfg, run)
    return summary | {"verdict": verdict.to_json(), "published": verdict.ships if summary.get("trained") else None}


def run_value_command(cfg: Config, args, run: Run | str | os.PathLike | None) -> dict[str, Any]:
    """`trendrec value`: train and judge the value part of ``run``; with ``--json`` the issue's object.

    ``run`` is a Run, a run folder of the store or None (the latest run, or a new one).
    """
    if not isinstance(run, Run):
        run = _run_of(Store(cfg.store), run)
    summary = train_and_judge(cfg, run, horizon_days=args.horizon_days)
    return json_object(summary) if args.json else summary  # the human summary prints models as a table


def value_command(cfg: Config, args) -> dict[str, Any]:
    """`trendrec value [RUN] [--horizon-days N] [--json]` (recsys.flow names it as the command's body)."""
    return run_value_command(cfg, args, args.run)


def _run_of(store: Store, path: str | os.PathLike | None) -> Run:
    return runs.latest_or_new(store) if path is None else runs.inside(store, path)


PART = Part(name=NAME, title="customer value", files=FILES, train=train, judge=judge, assemble=assemble)
