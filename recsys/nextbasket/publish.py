"""The next-basket model's part of a release: the model the verdict ships and its push-time scores.

``assemble`` fills the version's ``nextbasket/`` folder (in the registry's staging copy): the run's
``LSTMRecommender`` when its verdict is blessed, else production's (carried forward, so one bad week
does not drop a good model), else nothing. The shipped model then scores every active customer's
retrieved items at the day after the last event, into ``nextbasket/scores.parquet``: batch re-ranking
and the service read these scores (recsys.rank), so neither needs TensorFlow and both give the same
order. A version without a next-basket model re-ranks by segment trends.

The sharded DAG scores before the push, one task per shard: ``prepare_scores`` names the model that
ships and the cut-off in the run's ``push-scores/`` folder, ``score_shard`` scores one shard's customers
into its own file there, and ``assemble(..., sharded=True)`` joins those files (the same bytes as
scoring every shard in turn, which `trendrec push` does).

    trendrec push --json
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import schemas as s
from pipeline.config import Config
from pipeline.errors import TrendrecError
from pipeline.lists import map_columns, with_store_segments
from pipeline.store import Store, read_json, write_json
from recsys import registry
from recsys.nextbasket.histories import (
    CustomerModelError,
    NoCustomerHistoryError,
    check_customers,
    customer_cutoff,
    open_store,
)
from recsys.nextbasket.scores import (
    add_list_scores,
    join_scores,
    score_shard_path,
    write_scores,
    write_scores_shard,
)
from recsys.runs import EVALUATION_FILE, TRAIN_FILE, VERDICT_FILE, Run, Verdict

log = logging.getLogger(__name__)

PART = "nextbasket"
MODEL_FILE, CONFIG_FILE = "model.keras", "config.json"  # recsys.nextbasket.model's, named without Keras
MODEL_FILES = (MODEL_FILE, CONFIG_FILE, TRAIN_FILE, EVALUATION_FILE, VERDICT_FILE)
SHIPPED = (MODEL_FILE, CONFIG_FILE, registry.SCORES_FILE)  # what a version's nextbasket/ folder holds
SCORE_SHARDS = "push-scores"  # in a run: the push-time scores' shard files until the push joins them
MANIFEST = "manifest.json"  # in SCORE_SHARDS: the model scored, its digest, the cut-off and the number of shards


def assemble(cfg: Config, run: Run, target: Path, verdict: Verdict, production: Path | None,
             lists: str | Path | None = None, sharded: bool = False, **_: Any) -> dict[str, Any]:
    """Fill ``target`` with the shipped model and its scores; the part's metadata fields ({} when none ships).

    ``lists``: a shop's own candidate lists (parquet or CSV with user_id and item_id, or the columns
    [rerank.columns] maps to them; a row without a segment gets the store's): their pairs are scored
    by the shipped model too, so re-ranking those lists uses the model wherever it knows the customer,
    whether or not the model retrieved the item itself.
    ``sharded``: the scores were made shard by shard (``prepare_scores``, then ``score_shard`` for each, the
    sharded DAG's tasks): join this run's shard files instead of scoring (every shard in turn).
    """
    from recsys.nextbasket.model import LSTMRecommender  # TensorFlow: only at push

    source = _source(run, verdict, production)
    if source is None:
        log.info("no next-basket model in this version (%s): re-ranking uses segment trends", verdict.reason)
        return {}
    registry.copy_part_files(source, target, [n for n in MODEL_FILES if (source / n).is_file()])
    store = Store(cfg.store)
    con = open_store(str(store.root), cfg.customers)
    try:
        model, cutoff = LSTMRecommender.load(target), customer_cutoff(con)
        shop_lists = with_store_segments(read_lists(lists, cfg.rerank.columns), store,
                                         cfg.aggregate.memory_limit)[0] if lists else None
        if sharded:  # the shards were scored without the lists: a second pass over the listed customers
            scored = _join_shards(con, run, target, cutoff, cfg)
            if shop_lists is not None:
                scored |= add_list_scores(model, con, cutoff, shop_lists, target / registry.SCORES_FILE,
                                          cfg.customers)
        else:  # the lists' pairs scored in the candidates' pass over the histories: the same table
            scored = write_scores(model, con, cutoff, target / registry.SCORES_FILE, cfg.customers,
                                  lists=shop_lists)
    except NoCustomerHistoryError as exc:
        shutil.rmtree(target, ignore_errors=True)
        log.warning("next-basket model not shipped: nothing to score (%s)", exc)
        return {}
    log.info("next-basket model (%s) scored %d pairs for %d customers in %.1f s", verdict.ships, scored["pairs"],
             scored["customers"], scored["seconds"])
    return {"ships": verdict.ships, "verdict": verdict.to_json(), "train": _read(target / TRAIN_FILE),
            "evaluation": _read(target / EVALUATION_FILE), "scores": scored}


def scores_folder(run: Run) -> Path:
    """The run's push-time score shards until the push joins them (``prepare_scores``, ``score_shard``)."""
    return run.root / SCORE_SHARDS


def prepare_scores(cfg: Config, run: Run, verdict: Verdict, production: Path | None) -> dict[str, Any]:
    """The sharded push's first step: a fresh scores folder in the run whose manifest names the model that
    ships (and the digest of its file), the cut-off and the number of shards (``customers.shards``);
    {"shards": [0 ... N-1], "scores": the folder, or None when no model ships}."""
    folder, shards = scores_folder(run), list(range(cfg.customers.shards))
    shutil.rmtree(folder, ignore_errors=True)
    source = _source(run, verdict, production)
    if source is None:
        return {"shards": shards, "scores": None}
    con = open_store(str(Store(cfg.store).root), cfg.customers)
    try:
        cutoff = customer_cutoff(con)
    except NoCustomerHistoryError:
        return {"shards": shards, "scores": None}
    finally:
        con.close()
    write_json({"source": str(source), "model": registry.cached_sha256(source / MODEL_FILE),
                "cutoff": cutoff.isoformat(), "shards": len(shards)}, folder / MANIFEST)
    return {"shards": shards, "scores": str(folder)}


def score_shard(cfg: Config, run: Run, shard: int) -> dict[str, Any]:
    """Score shard ``shard`` of the prepared scores (recsys.nextbasket.scores.write_scores_shard) into the run's
    scores folder; a re-run replaces its file. Nothing to do when no model ships."""
    from recsys.nextbasket.model import LSTMRecommender  # TensorFlow: only to score

    manifest = _manifest(run)
    if manifest is None:
        return {"shard": shard, "scored": False}
    customers = dataclasses.replace(cfg.customers, shards=manifest["shards"])
    con = open_store(str(Store(cfg.store).root), customers)
    try:
        return write_scores_shard(LSTMRecommender.load(Path(manifest["source"])), con,
                                  date.fromisoformat(manifest["cutoff"]),
                                  score_shard_path(scores_folder(run), shard, manifest["shards"]), customers, shard)
    except NoCustomerHistoryError as exc:  # the join finds out again and ships no model
        return {"shard": shard, "scored": False, "reason": str(exc)}
    finally:
        con.close()


def clear_scores(run: Run) -> None:
    """Remove the run's score shards (after the push that joined them)."""
    shutil.rmtree(scores_folder(run), ignore_errors=True)


def _manifest(run: Run) -> dict[str, Any] | None:
    path = scores_folder(run) / MANIFEST
    return read_json(path) if path.is_file() else None


def _join_shards(con, run: Run, target: Path, cutoff, cfg: Config) -> dict[str, Any]:
    """The run's score shards joined into ``target``'s scores, when they were made for the model in ``target``
    at ``cutoff``; else a CustomerModelError saying to run the push again from its first step."""
    check_customers(con, cutoff, cfg.customers)  # a guest-only log: no shard wrote a file, no model ships
    manifest, folder = _manifest(run), scores_folder(run)
    if manifest is None:
        raise CustomerModelError(f"no push-time score shards in {folder}: run the push's first step and its shards")
    if manifest["model"] != registry.cached_sha256(target / MODEL_FILE) or manifest["cutoff"] != cutoff.isoformat():
        raise CustomerModelError(f"the score shards in {folder} were made for another model or cut-off "
                                 f"({manifest['source']}, {manifest['cutoff']}): run the push again from its first step")
    started = time.perf_counter()
    joined = join_scores(folder, manifest["shards"], target / registry.SCORES_FILE)
    return joined | {"cutoff": cutoff.isoformat(), "seconds": round(time.perf_counter() - started, 1)}


class ListsError(TrendrecError):
    """The shop's lists handed to push cannot be read."""


def read_lists(path: str | Path, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """(user_id, item_id[, segment]) of a shop's candidate lists, parquet or CSV by suffix; ``columns``
    ([rerank.columns]) maps the shop's names to trendrec's, as batch re-ranking does (pipeline.lists)."""
    path = Path(path)
    if not path.is_file():
        raise ListsError(f"lists file {path} not found")
    try:
        frame = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(
            path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise ListsError(f"lists file {path} cannot be read: {' '.join(str(exc).split())[:160]}") from exc
    frame = map_columns(frame, columns or {}, f"lists file {path}", (s.USER_ID, s.ITEM_ID), ListsError)
    keep = frame[s.USER_ID].notna() & frame[s.ITEM_ID].notna()
    return frame.loc[keep, [c for c in (s.USER_ID, s.ITEM_ID, s.SEGMENT) if c in frame.columns]]


def _source(run: Run, verdict: Verdict, production: Path | None) -> Path | None:
    """The folder whose model ships: the run's, production's, or None."""
    if verdict.ships == "run":
        return run.part(PART)
    if verdict.ships == "production" and production is not None and (production / MODEL_FILE).is_file():
        log.info("next-basket model of %s not blessed: carrying production's forward", run.run_id)
        return production
    return None


def _read(path: Path) -> dict[str, Any]:
    return read_json(path) if path.is_file() else {}
