"""Training runs and the parts they train: the run folder, the ``Verdict`` and the ``Part`` of a model family.

A training run is one folder, ``models/runs/<run id>/`` (``Store.training_runs``), with one sub-folder per
model family (``forecast/``, ``nextbasket/``, ``value/``) and ``run.json``, which records when the run was
created. ``latest()`` picks the newest run by that recorded time, never by its name, so a run named
``manual-check`` does not shadow a later one named by the clock. ``inside()`` refuses a folder that is not a
run of this store.

Each model family exposes one ``Part``: its name (the sub-folder of a run and of a version), the files it
ships, and three steps that take the config and the run:

- ``train(cfg, run, **options)``: fit the family's models into ``run/<name>/``, written as one set (built
  aside, renamed whole) with the fingerprint of its settings and of the data it read (``fingerprint``);
- ``judge(cfg, run)``: compare the trained model with the family's strong baselines and return one
  ``Verdict``, written to ``run/<name>/verdict.json`` (``write_verdict``); once every part is judged, the
  release rule records the set in ``run/judged.json`` (``seal_verdicts``), and a push reads that set only
  (``judged_verdicts``), so a judge killed between two parts is never half of a release;
- ``assemble(cfg, run, target, verdict, production, **options)``: fill ``target`` (the part's folder in the version
  being built) with what the release ships for the family: the run's model when its verdict is blessed,
  otherwise production's part (``production``, its verified folder, or None) or the family's baseline. It
  returns the part's metadata fields. ``options`` are push's (``lists``: a shop's lists to score too).

The release rule (recsys.release) reads verdicts only, the way TFX's Pusher reads the Evaluator's blessing.

    python -c "from pipeline.store import Store; from recsys.runs import latest; print(latest(Store('trendrec-data')))"
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import TrendrecError
from pipeline.snapshots import held_folder, prune
from pipeline.store import Store, new_run_id, read_json, safe_name, write_json

if TYPE_CHECKING:
    from pipeline.config import Config

log = logging.getLogger(__name__)

RUN_FILE = "run.json"  # in a run folder: run id and creation time (ns), what latest() orders by
VERDICT_FILE = "verdict.json"  # in a part folder: the family's Verdict
JUDGED_FILE = "judged.json"  # in a run folder: the verdicts of the last complete judge, by their digests
EVALUATION_FILE = "evaluation.json"  # in a part folder: the judge's figures (model, baselines, per segment)
TRAIN_FILE = "train.json"  # in a part folder: what training did (cut-offs, epochs, validation figures)
FINGERPRINT_KEY = "fingerprint"  # in a part's train.json: settings and inputs it was trained from


class RunError(TrendrecError):
    """No training run, or a folder that is not a run of this store."""


@dataclass(frozen=True)
class Run:
    """One training run: ``root`` is ``models/runs/<run_id>/``; ``part(name)`` a family's sub-folder."""

    root: Path
    run_id: str
    created_ns: int = 0

    def part(self, name: str) -> Path:
        return self.root / name

    def __str__(self) -> str:
        return str(self.root)


def create(store: Store, run_id: str | None = None) -> Run:
    """The run ``run_id`` (default: a new id from the clock), made with its run.json if it is new.

    A run id names one transaction (the DAG uses the logical date): calling this again with the same id
    opens the same run, so a re-run adds to it instead of making a second one.
    """
    run_id = safe_name(run_id, "run id") if run_id is not None else new_run_id()
    root = store.training_runs / run_id
    if (root / RUN_FILE).is_file():
        return _open(root)
    now = time.time_ns()  # write_json makes the folder, and removes it again if the write fails (a full disk)
    write_json({"run_id": run_id, "created_ns": now,
                "created_at": datetime.fromtimestamp(now / 1e9, timezone.utc).isoformat(timespec="seconds")},
               root / RUN_FILE)
    log.info("training run %s in %s", run_id, root)
    return Run(root, run_id, now)


def runs(store: Store) -> list[Run]:
    """Every run of the store, oldest first by recorded creation time (name breaks ties)."""
    parent = store.training_runs
    found = [_open(p) for p in parent.iterdir() if (p / RUN_FILE).is_file() and not p.is_symlink()] \
        if parent.is_dir() else []
    return sorted(found, key=lambda r: (r.created_ns, r.run_id))


def latest(store: Store) -> Run:
    """The newest run by recorded creation time; RunError when the store has none."""
    found = runs(store)
    if not found:
        raise RunError(f"no training run in {store.training_runs}: run `trendrec train` first (or `trendrec nextbasket`, "
                       f"`trendrec value`)")
    return found[-1]


def latest_or_new(store: Store, run_id: str | None = None) -> Run:
    """``create(run_id)`` when an id is given, else the latest run, else a new one."""
    if run_id is not None:
        return create(store, run_id)
    found = runs(store)
    return found[-1] if found else create(store)


def inside(store: Store, path: str | os.PathLike) -> Run:
    """The run at ``path``: inside the store (symlinks resolved), directly under models/runs/, with run.json."""
    resolved = store.inside(path)
    if resolved.parent != store.training_runs.resolve() or not (resolved / RUN_FILE).is_file():
        raise RunError(f"{resolved} is not a training run of this store: expected a folder "
                       f"{store.training_runs}/<run id>/ written by `trendrec train`, `customers` or `value`")
    return _open(resolved)


def resolve(store: Store, path: str | os.PathLike | None) -> Run:
    """``inside(path)`` when a path is given, else ``latest()``: how every command finds its run."""
    return latest(store) if path is None else inside(store, path)


def _open(root: Path) -> Run:
    try:
        meta = read_json(root / RUN_FILE)
        return Run(root, str(meta["run_id"]), int(meta["created_ns"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunError(f"{root / RUN_FILE} cannot be read ({exc}); remove the folder or train again") from exc


def fingerprint(settings: Any, inputs: Any) -> str:
    """SHA-256 of the settings and the inputs a result was computed from (JSON, keys sorted).

    A stage reuses its earlier result only when both are the same: ``inputs`` names what it read (the raw
    commits, the daily table's set, the cut-off), ``settings`` the config section it trained with.
    """
    blob = json.dumps({"settings": settings, "inputs": inputs}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def run_ref(store: Store, run: Run) -> str:
    """How a version records the run it was built from: its path relative to the store."""
    return run.root.resolve().relative_to(store.root).as_posix()


def part_staging(run: Run, name: str, keep: set[str] = frozenset()) -> tuple[Path, int]:
    """A folder of this attempt's own beside ``run/<name>/`` to build the part in, and the descriptor that
    holds its flock (pipeline.snapshots.held_folder). First removes what killed attempts left there
    (``.<name>.*`` folders nobody holds, and old sets a killed switch set aside, but not ``keep``); a live
    attempt's folder is flock-ed and stays."""
    prefix = f".{name}."
    for left in prune(run.root, prefix, keep=set(keep)):
        log.info("run %s: removed %s, left by an interrupted attempt", run.run_id, left)
    for path in run.root.glob(f"{prefix}*"):  # an old set that was a file or a link, set aside
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
    return held_folder(run.root, prefix)


def switch_folder(built: Path, final: Path) -> None:
    """Put the fully built folder ``built`` in place of ``final``, whole.

    The old set (a folder, or whatever stands at ``final``) is renamed aside first and removed after: a
    process killed between the two renames leaves no ``final`` (the old set or none, never a mix); what
    it set aside is a ``.<name>.old-*`` entry that the next ``part_staging`` of the part removes. The
    parent folder is flushed after the switch, so the new set survives a power loss.
    """
    aside = None
    if final.exists() or final.is_symlink():
        aside = final.parent / f".{final.name}.old-{time.time_ns()}"
        os.rename(final, aside)
    os.rename(built, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if aside is None:
        return
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.unlink(missing_ok=True)


def raw_inputs(store: Store) -> list[str]:
    """The committed ingests the raw log holds (their digests): what a stage reading raw/ read."""
    return sorted(p.stem for p in store.commits.glob("*.json")) if store.commits.is_dir() else []


@dataclass(frozen=True)
class Verdict:
    """A family's blessing: whether its trained model beats its strong baseline, on which metric, by how much.

    ``ships`` says what the release would hold for the family under this verdict: ``"run"`` (the run's
    model), ``"production"`` (production's part, carried forward) or the name of a baseline or member shipped
    instead. ``against`` is the production version the judge compared with (None: none was in production,
    or the family is judged against baselines only); a push refuses a verdict judged against a production
    that has moved since.
    """

    part: str
    blessed: bool
    metric: str
    value: float | None
    baseline: str | None
    baseline_value: float | None
    reason: str
    ships: str = "run"
    against: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # the family's own figures, shown by status/report

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Verdict:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in obj.items() if k in names})


def write_verdict(part_dir: Path, verdict: Verdict) -> Verdict:
    write_json(verdict.to_json(), part_dir / VERDICT_FILE)
    log.info("%s: %s", verdict.part, verdict.reason)
    return verdict


def read_verdict(part_dir: Path) -> Verdict | None:
    """The part's verdict, or None when it was not judged (or not trained)."""
    path = part_dir / VERDICT_FILE
    if not path.is_file():
        return None
    try:
        return Verdict.from_json(read_json(path))
    except (OSError, ValueError, TypeError) as exc:
        raise RunError(f"{path} cannot be read ({exc}); judge the run again") from exc


def seal_verdicts(run: Run, names: list[str]) -> None:
    """Record the verdicts of ``names`` as one judged set: ``judged.json`` names each verdict file's SHA-256,
    written whole once every verdict is (``judged_verdicts`` reads only such a set)."""
    digests = {name: hashlib.sha256((run.part(name) / VERDICT_FILE).read_bytes()).hexdigest() for name in names}
    write_json({"verdicts": digests}, run.root / JUDGED_FILE)


def judged_verdicts(run: Run) -> dict[str, Verdict]:
    """The verdicts of the run's last complete judge; {} when it was never judged whole.

    A judge writes one verdict.json per part, one after another: a judge killed between two, or running now,
    leaves a mix of new and earlier verdicts, and a part trained again has none. Each verdict must still be
    the file ``seal_verdicts`` recorded, byte for byte; RunError names the first that is not.
    """
    path = run.root / JUDGED_FILE
    if not path.is_file():
        return {}
    try:
        digests = dict(read_json(path)["verdicts"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunError(f"{path} cannot be read ({exc}); judge the run again") from exc
    found = {}
    for name, digest in sorted(digests.items()):
        verdict_path = run.part(name) / VERDICT_FILE
        data = verdict_path.read_bytes() if verdict_path.is_file() else b""
        if hashlib.sha256(data).hexdigest() != digest:
            raise RunError(f"{verdict_path} is not the verdict the last complete judge of {run.root} recorded "
                           f"(a judge was interrupted or is running, or the part was trained again): judge the "
                           f"run again")
        found[name] = Verdict.from_json(json.loads(data))
    return found


Train = Callable[..., dict[str, Any]]  # (cfg, run, **options) -> summary
Judge = Callable[["Config", Run], Verdict]
Assemble = Callable[..., dict[str, Any]]  # (cfg, run, target, verdict, production, **options) -> fields


@dataclass(frozen=True)
class Part:
    """One model family as the release sees it (see the module docstring)."""

    name: str  # sub-folder of a run and of a version
    title: str  # what it is, for people: "segment forecaster", ...
    files: tuple[str, ...]  # what a version's part folder must hold (relative to it)
    train: Train
    judge: Judge
    assemble: Assemble
