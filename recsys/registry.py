"""The model registry: numbered versions under ``models/`` and the production pointer.

A version is a directory ``models/vNNNN/`` holding the candidate's files (model.keras,
recommender.json, config.json, train.json, evaluation.json), what the model stage adds when it
publishes (recsys.forecast.publish: a SavedModel export and the segment trend scores,
trend.parquet) and metadata.json, which lists the SHA-256 of every file. The registry deals in
files and JSON only and imports no model code: promote and rollback refuse a version whose files
are missing or do not match their digests, before production.json is touched. ``models/production.json`` names the version in
production plus the stack of earlier production versions, so ``rollback`` can step back. A version
is assembled in ``models/.staging-vNNNN/`` and renamed into place whole, and production.json is
replaced atomically last, so a failure at any step leaves production as it was. The version moves in
with a ``.pending-production`` marker, removed once production.json names it: a push killed between
the two steps is finished by its re-run (an Airflow retry), and what it left in models/ is removed.
Versions and their files are never symlinks, and their digests are checked again where a version is
used (status, rerank, the service), cheaply: a file is re-hashed only when its size or mtime changed.

After each push the registry keeps the newest K versions (``registry.keep_versions``, default 10;
0 keeps all) plus production and every version on its rollback history; the history itself is
capped at K entries, so rollback can step back up to K times. Older versions are deleted.

    trendrec push --json && trendrec models list && trendrec models rollback
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.errors import TrendrecError
from pipeline.store import Store, read_json, write_json

log = logging.getLogger(__name__)

VERSION_RE = re.compile(r"^v\d{4,}$")
PRODUCTION_FILE = "production.json"
METADATA_FILE = "metadata.json"
TREND_FILE = "trend.parquet"
FILES_KEY = "files"  # metadata.json: {relative path: sha256} of every other file of the version
# Fills a staging copy of the candidate (directory, version, evaluation) and returns metadata fields.
Assembler = Callable[[Path, str, dict[str, Any]], dict[str, Any]]
# What a loadable version must contain; checked before anything is loaded or promoted.
VERSION_FILES = (METADATA_FILE, TREND_FILE)
# ... and the forecaster's files, one of these sets: a combination (an LSTM member adds model.keras and
# recommender.json, listed in the digests like every file), or an LSTM saved before combinations existed.
FORECASTER_FILES = (("combination.json",), ("model.keras", "recommender.json"))
# In a version directory while its push has not yet written production.json (see _finish_push).
PENDING_FILE = ".pending-production"
STALE_SECONDS = 60.0  # a production.json temp file untouched this long belongs to a dead process


class RegistryError(TrendrecError):
    """A version is missing, malformed or cannot become production."""


def _store(store: Store | str | os.PathLike) -> Store:
    return store if isinstance(store, Store) else Store(store)


def check_version(version: str) -> str:
    """Refuse anything but ``vNNNN`` so a user-given name can never point outside models/."""
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise RegistryError(f"invalid model version {version!r}: expected v and 4+ digits, e.g. v0002")
    return version


def versions(store: Store | str | os.PathLike) -> list[str]:
    """Every complete version directory, oldest first (staging and candidate dirs are not versions)."""
    models = _store(store).models
    if not models.is_dir():
        return []
    names = [p.name for p in models.iterdir()
             if VERSION_RE.match(p.name) and p.is_dir() and not p.is_symlink()]  # the registry makes no links
    return sorted(names, key=lambda v: int(v[1:]))


def version_dir(store: Store | str | os.PathLike, version: str) -> Path:
    """The directory of ``version``, checked to hold every file a loadable version needs."""
    path = _store(store).models / check_version(version)
    if not path.is_dir():
        raise RegistryError(f"model version {version} not found: {path} does not exist")
    _contained(path, path, version)
    missing = [name for name in VERSION_FILES if not (path / name).is_file()]
    forecaster = next((names for names in FORECASTER_FILES if all((path / n).is_file() for n in names)), None)
    if forecaster is None:
        missing.append(" or ".join("+".join(names) for names in FORECASTER_FILES))
    if missing:
        raise RegistryError(f"model version {version} at {path} is incomplete: missing {', '.join(missing)}")
    for name in (*VERSION_FILES, *forecaster):
        _contained(path, path / name, version)
    return path


def _contained(version_path: Path, file: Path, version: str) -> None:
    """Refuse a version directory or file that is, or resolves through, a symlink out of the version."""
    real = version_path.parent.resolve() / version_path.name
    if version_path.is_symlink() or (file != version_path and real not in file.resolve().parents):
        raise RegistryError(f"model version {version}: {file} is a symlink out of {real}; the registry "
                            f"never makes links: remove it or push again")


def verify_version(store: Store | str | os.PathLike, version: str) -> Path:
    """version_dir(), plus every file checked against the SHA-256 listed in its metadata.json.

    Versions pushed before digests were recorded have no list and are checked for completeness only.
    """
    path = version_dir(store, version)
    digests = read_metadata(path).get(FILES_KEY) or {}
    if not isinstance(digests, dict):
        raise RegistryError(f"{path / METADATA_FILE}: '{FILES_KEY}' is not a mapping; push the model again")
    for name, digest in sorted(digests.items()):
        file = path / name
        _contained(path, file, version)
        if not file.is_file() or cached_sha256(file) != digest:
            raise RegistryError(f"model version {version} at {path} cannot be loaded: {name} is missing or "
                                f"does not match the digest recorded at push (corrupt or truncated?)")
    return path


def read_metadata(path: Path) -> dict[str, Any]:
    """A version's metadata.json as a dict; RegistryError (one line) when it is not one."""
    file = path / METADATA_FILE
    try:
        meta = read_json(file)
    except (OSError, ValueError) as exc:  # ValueError: bad JSON or bad UTF-8
        raise RegistryError(f"{file} cannot be read ({' '.join(str(exc).split())[:120]}); "
                            f"push the model again or remove {path.name}") from exc
    if not isinstance(meta, dict):
        raise RegistryError(f"{file} is not a JSON object; push the model again or remove {path.name}")
    return meta


_DIGESTS: dict[tuple, str] = {}  # (path, inode, size, mtime_ns) -> sha256: a file is hashed once per change


def cached_sha256(path: Path) -> str:
    """_sha256(path), from a cache keyed by the file's identity, size and mtime (a stat, not a read)."""
    st = os.stat(path)
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = _sha256(path)
    return _DIGESTS[key]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(directory: Path) -> dict[str, str]:
    """{path relative to ``directory``: sha256} of every file below it, metadata.json excepted."""
    return {p.relative_to(directory).as_posix(): _sha256(p) for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name != METADATA_FILE}


def read_production(store: Store | str | os.PathLike) -> dict[str, Any] | None:
    """``{"version": ..., "history": [...]}`` or None when nothing was ever pushed."""
    path = _store(store).models / PRODUCTION_FILE
    if not path.is_file():
        return None
    try:
        prod = read_json(path)
        check_version(prod["version"])
        history = [check_version(v) for v in prod.get("history", [])]
    except (ValueError, KeyError, TypeError, RegistryError) as exc:
        raise RegistryError(f"{path} is malformed ({exc}); "
                            f"expected {{'version': 'vNNNN', 'history': [...]}}") from exc
    return {"version": prod["version"], "history": history}


# Where each part's files live in a version. Versions pushed before parts existed hold the forecaster at the
# version's root, the next-basket model in customers/ and the value forecast in customers/value/.
PART_NAMES = ("forecast", "nextbasket", "value")
LEGACY_PART_DIRS = {"forecast": ".", "nextbasket": "customers", "value": "customers/value"}
SCORES_FILE = "scores.parquet"  # in the nextbasket part: push-time scores of (customer, item) pairs


@dataclass(frozen=True)
class Release:
    """A verified version: the one way status, report, segments, rerank, serve and notebooks read production.

    ``path`` is the version folder, every file checked against its digest; ``metadata`` its metadata.json;
    ``part(name)`` the folder of a part (None when the version ships no such part); ``trend_file`` and
    ``scores_file`` the two tables re-ranking reads.
    """

    version: str
    path: Path
    metadata: dict[str, Any]
    history: tuple[str, ...] = ()

    def part(self, name: str) -> Path | None:
        folder = self.path / name
        if folder.is_dir() and not folder.is_symlink():
            return folder
        legacy = self.path / LEGACY_PART_DIRS[name]
        if "parts" not in self.metadata and legacy.is_dir():
            return legacy if name != "forecast" or (legacy / TREND_FILE).is_file() else None
        return None

    def part_metadata(self, name: str) -> dict[str, Any]:
        """The part's entry in metadata.json ({} when the version has none)."""
        return (self.metadata.get("parts") or {}).get(name) or {}

    @property
    def trend_file(self) -> Path | None:
        forecast = self.part("forecast")
        return forecast / TREND_FILE if forecast is not None and (forecast / TREND_FILE).is_file() else None

    @property
    def scores_file(self) -> Path | None:
        nextbasket = self.part("nextbasket")
        return nextbasket / SCORES_FILE if nextbasket is not None and (nextbasket / SCORES_FILE).is_file() else None


def load_release(store: Store | str | os.PathLike, version: str, history: tuple[str, ...] = ()) -> Release:
    """``version`` verified (every digest checked) with its metadata; RegistryError when it is broken."""
    path = verify_version(store, version)
    return Release(version, path, read_metadata(path), tuple(history))


def production(store: Store | str | os.PathLike) -> Release | None:
    """The production release, verified; None when nothing was ever pushed. RegistryError when it is broken."""
    prod = read_production(store)
    return None if prod is None else load_release(store, prod["version"], tuple(prod["history"]))


def _write_production(store: Store, version: str, history: list[str]) -> dict[str, Any]:
    prod = {"version": version, "history": history}
    write_json(prod, store.models / PRODUCTION_FILE)
    log.info("production is now %s (history %s)", version, history)
    return prod


def list_models(store: Store | str | os.PathLike) -> list[dict[str, Any]]:
    """One row per version: version, created_at, mase, baseline_mase, is_production."""
    store = _store(store)
    prod = read_production(store)
    rows = []
    for version in versions(store):
        meta = read_metadata(store.models / version) if (store.models / version / METADATA_FILE).is_file() else {}
        metrics = meta.get("metrics") or {}
        rows.append({
            "version": version, "created_at": meta.get("created_at"),
            "mase": (metrics.get("model") or {}).get("mase"),
            "baseline_mase": (metrics.get("seasonal_naive") or {}).get("mase"),
            "is_production": prod is not None and prod["version"] == version,
        })
    return rows


def promote(store: Store | str | os.PathLike, version: str) -> dict[str, Any]:
    """Make ``version`` production after verifying its files; the current one goes onto the history."""
    store = _store(store)
    check_version(version)
    prod = read_production(store)
    if prod is not None and prod["version"] == version:
        return {"version": version, "history": prod["history"], "changed": False}
    verify_version(store, version)  # refuse a broken version before touching production.json
    history = (prod["history"] + [prod["version"]]) if prod else []
    previous = prod["version"] if prod else None
    return _write_production(store, version, history) | {"changed": True, "previous": previous}


def rollback(store: Store | str | os.PathLike) -> dict[str, Any]:
    """Return to the previous production version (the history is a stack: rollback pops it)."""
    store = _store(store)
    prod = read_production(store)
    if prod is None:
        raise RegistryError(f"nothing to roll back: {store.models / PRODUCTION_FILE} does not exist")
    if not prod["history"]:
        raise RegistryError(f"nothing to roll back to: {prod['version']} is the first production version")
    previous = prod["history"][-1]
    verify_version(store, previous)
    result = _write_production(store, previous, prod["history"][:-1])
    return result | {"changed": True, "previous": prod["version"]}


def push(cfg: Config, candidate_dir: str | Path, assemble: Assembler,
         decision: tuple[bool, str] | None = None) -> dict[str, Any]:
    """Version a blessed candidate as models/vNNNN/ and make it production; do nothing otherwise.

    ``assemble(staging, version, evaluation)`` adds the model stage's files to a staging copy of the
    candidate and returns its metadata fields (recsys.forecast.publish.publish passes one); the
    registry adds the generic fields and the file digests, then renames the version into place.
    ``decision`` (blessed, reason) replaces the evaluation's verdict when the caller judged the
    version on more than evaluation.json (a version pushed for its customer model).

    Re-pushing a candidate that already has a version is a no-op (a re-run DAG stays idempotent),
    and an evaluation made against another production version than today's is refused as stale.
    """
    store = Store(cfg.store)
    candidate_dir = Path(candidate_dir).resolve()
    evaluation = read_evaluation(candidate_dir)
    blessed, reason = decision if decision is not None else (bool(evaluation.get("blessed")), evaluation.get("reason"))
    summary = {"candidate_dir": str(candidate_dir), "blessed": bool(blessed), "reason": reason,
               "metrics": evaluation.get("metrics")}
    if not summary["blessed"]:
        log.info("not pushing %s: %s", candidate_dir, summary["reason"])
        return {"pushed": False, **summary}
    clean_stale(store)
    existing = pushed_as(store, candidate_dir)
    if existing:
        return _finish_push(cfg, store, existing, summary)
    prod = read_production(store)
    current = prod["version"] if prod else None
    if evaluation.get("production_version") != current:
        raise RegistryError(f"{candidate_dir / 'evaluation.json'} compared against production "
                            f"{evaluation.get('production_version')} but production is now {current}: "
                            f"run `trendrec evaluate` again")
    version = _next_version(store)
    final, staging = store.models / version, store.models / f".staging-{version}"
    try:
        verdict = evaluation | {"blessed": blessed, "reason": reason}
        metadata = _assemble(store, candidate_dir, staging, version, verdict, assemble)
        (staging / PENDING_FILE).touch()  # moves in with the version: "production.json not written yet"
        os.rename(staging, final)  # fails if a concurrent push took the same number
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _finish_push(cfg, store, version, summary) | {"segments": metadata.get("segments")}


def _finish_push(cfg: Config, store: Store, version: str, summary: dict[str, Any]) -> dict[str, Any]:
    """Make a just-renamed (or an interrupted push's) version production, unless that already happened.

    A version still holding PENDING_FILE was renamed into place by a push that did not get to write
    production.json: it becomes production now if production is still the version it replaced. A
    version without the marker was pushed completely before (a re-run is a no-op).
    """
    pending = store.models / version / PENDING_FILE
    if not pending.exists():
        return {"pushed": False, **summary, "version": version,
                "reason": f"{summary['candidate_dir']} was already pushed as {version}"}
    prod = read_production(store)
    current = prod["version"] if prod else None
    replaced = read_metadata(store.models / version).get("replaced")
    if current not in (version, replaced):
        pending.unlink()
        raise RegistryError(f"{version} was pushed but production moved from {replaced} to {current} before it "
                            f"was promoted; promote it with `trendrec models promote {version}` if wanted")
    keep = keep_versions(cfg)
    if current != version:
        history = (prod["history"] + [current]) if prod else []
        _write_production(store, version, history[-keep:] if keep > 0 else history)
    pending.unlink()
    log.info("pushed %s as %s", summary["candidate_dir"], version)
    return {"pushed": True, **summary, "version": version, "model_dir": str(store.models / version),
            "previous": current if current != version else replaced, "pruned": prune(store, keep)}


def clean_stale(store: Store | str | os.PathLike, older_than: float = STALE_SECONDS) -> list[str]:
    """Remove what a killed push, promote or prune left in models/: trash directories, staging
    directories of a version number already taken, production.json temp files untouched for
    ``older_than`` seconds (a live one exists for microseconds), so a concurrent push keeps its own."""
    models, removed = _store(store).models, []
    taken, cutoff = set(versions(store)), time.time() - older_than
    for entry in models.glob(".*") if models.is_dir() else []:
        name = entry.name
        stale = name.startswith(".trash-") or (name.startswith(".staging-") and name[9:] in taken) or (
            name.startswith(f".{PRODUCTION_FILE}.") and name.endswith(".tmp") and entry.lstat().st_mtime < cutoff)
        if stale:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry.name)
    if removed:
        log.info("removed %s left by an interrupted push in %s", removed, models)
    return removed


def keep_versions(cfg: Config) -> int:
    """registry.keep_versions of the config (0 keeps every version)."""
    return int(cfg.registry.keep_versions)


def prune(store: Store | str | os.PathLike, keep: int) -> list[str]:
    """Delete versions older than the newest ``keep``, except production and its history.

    A version is renamed to ``.trash-<version>`` first, so it disappears from ``versions()`` at once
    and a crash mid-delete leaves no half version behind. ``keep`` <= 0 keeps everything.
    """
    store = _store(store)
    prod = read_production(store)
    if keep <= 0 or prod is None:
        return []
    protected = {prod["version"], *prod["history"], *versions(store)[-keep:]}
    removed = []
    for version in versions(store):
        if version not in protected:
            trash = store.models / f".trash-{version}"
            os.rename(store.models / version, trash)
            shutil.rmtree(trash, ignore_errors=True)
            removed.append(version)
    if removed:
        log.info("pruned %s (keeping the newest %d, production and its history)", removed, keep)
    return removed


def read_evaluation(candidate_dir: Path) -> dict[str, Any]:
    """The candidate's evaluation.json (written by `trendrec evaluate`); RegistryError when missing."""
    path = candidate_dir / "evaluation.json"
    if not path.is_file():
        raise RegistryError(f"{path} not found: run `trendrec evaluate` first")
    return read_json(path)


def _next_version(store: Store) -> str:
    existing = versions(store)
    return f"v{(int(existing[-1][1:]) + 1 if existing else 1):04d}"


def _candidate_ref(store: Store, candidate_dir: Path) -> str:
    """The candidate's path relative to the store when inside it, so a moved store still matches."""
    try:
        return str(candidate_dir.resolve().relative_to(store.root))
    except ValueError:
        return str(candidate_dir.resolve())


def pushed_as(store: Store, candidate_dir: Path) -> str | None:
    ref = _candidate_ref(store, candidate_dir)
    for version in versions(store):
        if (store.models / version / METADATA_FILE).is_file() and \
                read_metadata(store.models / version).get("candidate") == ref:
            return version
    return None


def _assemble(store: Store, candidate_dir: Path, staging: Path, version: str, evaluation: dict[str, Any],
              assemble: Assembler) -> dict[str, Any]:
    """Copy the candidate into ``staging``, let the model stage add its files, write metadata.json."""
    shutil.rmtree(staging, ignore_errors=True)  # left over by a crashed push
    shutil.copytree(candidate_dir, staging)
    metadata = {
        "version": version, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "candidate": _candidate_ref(store, candidate_dir), "metrics": evaluation.get("metrics"),
        "blessed": evaluation.get("blessed"), "reason": evaluation.get("reason"),
        "replaced": evaluation.get("production_version"),
    }
    metadata |= assemble(staging, version, evaluation)
    metadata[FILES_KEY] = file_digests(staging)
    write_json(metadata, staging / METADATA_FILE)
    return metadata
