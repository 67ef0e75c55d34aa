"""The model registry: numbered versions under ``models/`` and the production pointer.

A version is a folder ``models/vNNNN/`` holding one sub-folder per part (``forecast/``, ``nextbasket/``,
``value/``) and metadata.json: the parts' own fields (``parts``: what each ships and why), the registry's
(version, created_at, run, replaced, reason) and ``files``, the SHA-256 of every other file of the version.
The registry deals in files and JSON only and imports no model code. ``models/production.json`` names the
version in production plus the stack of earlier production versions, so ``rollback`` can step back.
The version folders as read (names, required files, metadata.json, production.json, ``Release``, the
rows of ``list_models``) are in ``recsys.registry.layout``, and copying files into a version and digesting
them in ``recsys.registry.files``; this module re-exports their public names: callers import
``recsys.registry`` only.

``push(cfg, run_ref, assemble, against=..., reason=...)`` makes a version: under the registry lock
(``models/.registry.lock``, a flock, also held by promote, rollback, prune and clean_stale) it checks the
run was not pushed already and production is still ``against`` (what the verdicts were judged against),
creates an empty staging folder of its own (``models/.staging-<ns>-<random>``, flock-ed while it is
built), lets ``assemble(staging)`` fill it (parts copy files in with ``copy_part_files``), refuses any
symlink, special file or file resolving outside the folder, writes metadata.json with the digests and
renames the folder into place with a ``.pending-production`` marker; production.json is then replaced
atomically and the marker removed. A push killed between the rename and production.json is finished by
its re-run (an Airflow retry); ``clean_stale`` removes what dead processes left in models/ (staging
folders nobody holds, trash folders, old production.json temp files), and push, promote and rollback
start with it.

A version is refused where it is used (status, rerank, the service; promote and rollback before they
touch production.json) when a required file is missing, a file is a symlink out of the version, its
``files`` map is missing or empty, a file is not listed there, or a listed file does not match its
digest; a file is re-hashed only when its size or mtime changed. Versions pushed before parts existed
(no ``parts`` in metadata.json) hold the forecaster at the version's root and are still read.

After each push the registry keeps the newest K versions (``registry.keep_versions``, default 10; 0
keeps all) plus production and every version on its rollback history, and older versions are deleted.
The history is capped at K entries, so rollback can step back up to K times: push caps it with the
config's K, promote and rollback with their ``keep`` argument (default 10, the config's default).

    trendrec push --json && trendrec models list && trendrec models rollback
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.config import Config, RegistryConfig
from pipeline.snapshots import held_folder, locked
from pipeline.snapshots import prune as prune_folders
from pipeline.store import Store, write_json
from recsys.registry.files import _sha256, _walk_files, copy_part_files, file_digests  # noqa: F401
from recsys.registry.layout import (  # noqa: F401  (re-exported: callers import recsys.registry only)
    FILES_KEY, FORECASTER_FILES, LEGACY_PART_DIRS, METADATA_FILE, PART_NAMES, PARTS_KEY, PENDING_FILE,
    PRODUCTION_FILE, SCORES_FILE, TREND_FILE, TREND_WEIGHT_KEY, VERSION_RE, RegistryError, Release,
    _contained, _required_files, _store, check_version, list_models, pushed_as, read_metadata, read_production,
    version_dir, versions)

log = logging.getLogger(__name__)

LOCK_FILE = ".registry.lock"  # in models/: the flock push, promote, rollback, prune and clean_stale hold
STAGING_PREFIX = ".staging-"  # in models/: a version being built (a held_folder)
# Fills the empty staging folder of a version (one sub-folder per part) and returns metadata fields.
Assembler = Callable[[Path], dict[str, Any]]
STALE_SECONDS = 60.0  # a production.json temp file untouched this long belongs to a dead process


@contextmanager
def _locked(store: Store) -> Iterator[None]:
    """The registry lock: one push, promote, rollback, prune or clean_stale at a time (not re-entrant)."""
    with locked(store.models / LOCK_FILE):
        yield


def verify_version(store: Store | str | os.PathLike, version: str) -> Path:
    """version_dir(), plus every file checked against the SHA-256 listed in its metadata.json.

    A version whose ``files`` map is missing or empty cannot be checked and is refused, as is a file
    the map does not list (nothing is added to a version after its push).
    """
    path = version_dir(store, version)
    digests = read_metadata(path).get(FILES_KEY)
    if not isinstance(digests, dict) or not digests:
        raise RegistryError(f"model version {version} at {path} cannot be checked: '{FILES_KEY}' in "
                            f"{METADATA_FILE} is missing, empty or not a mapping of file digests; "
                            f"push the model again")
    for name in _walk_files(path, "model version", exclude=(METADATA_FILE, PENDING_FILE)):
        if name not in digests:
            raise RegistryError(f"model version {version} at {path}: {name} is not listed in {METADATA_FILE} "
                                f"(added after the push?); remove it or push the model again")
    for name, digest in sorted(digests.items()):
        file = path / name
        _contained(path, file, version)
        if not file.is_file() or cached_sha256(file) != digest:
            raise RegistryError(f"model version {version} at {path} cannot be loaded: {name} is missing or "
                                f"does not match the digest recorded at push (corrupt or truncated?)")
    return path


_DIGESTS: dict[tuple, str] = {}  # (path, inode, size, mtime_ns) -> sha256: a file is hashed once per change


def cached_sha256(path: Path) -> str:
    """_sha256(path), from a cache keyed by the file's identity, size and mtime (a stat, not a read)."""
    st = os.stat(path)
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = _sha256(path)
    return _DIGESTS[key]


def load_release(store: Store | str | os.PathLike, version: str, history: tuple[str, ...] = ()) -> Release:
    """``version`` verified (every digest checked) with its metadata; RegistryError when it is broken."""
    path = verify_version(store, version)
    return Release(version, path, read_metadata(path), tuple(history))


def production(store: Store | str | os.PathLike) -> Release | None:
    """The production release, verified; None when nothing was ever pushed. RegistryError when it is broken."""
    prod = read_production(store)
    return None if prod is None else load_release(store, prod["version"], tuple(prod["history"]))


def _write_production(store: Store, version: str, history: list[str], keep: int) -> dict[str, Any]:
    """Replace production.json atomically; the history keeps its last ``keep`` entries (all when <= 0)."""
    prod = {"version": version, "history": history[-keep:] if keep > 0 else history}
    write_json(prod, store.models / PRODUCTION_FILE)
    log.info("production is now %s (history %s)", version, prod["history"])
    return prod


def promote(store: Store | str | os.PathLike, version: str,
            keep: int = RegistryConfig.keep_versions) -> dict[str, Any]:
    """Make ``version`` production after verifying its files; the current one goes onto the history,
    which keeps its last ``keep`` entries (pass ``keep_versions(cfg)``; <= 0 keeps all)."""
    store = _store(store)
    check_version(version)
    with _locked(store):
        _clean_stale(store, STALE_SECONDS)  # what a killed push, promote or rollback left
        prod = read_production(store)
        if prod is not None and prod["version"] == version:
            return {"version": version, "history": prod["history"], "changed": False}
        verify_version(store, version)  # refuse a broken version before touching production.json
        history = (prod["history"] + [prod["version"]]) if prod else []
        previous = prod["version"] if prod else None
        return _write_production(store, version, history, keep) | {"changed": True, "previous": previous}


def rollback(store: Store | str | os.PathLike, keep: int = RegistryConfig.keep_versions) -> dict[str, Any]:
    """Return to the previous production version (the history is a stack: rollback pops it; what is left
    keeps its last ``keep`` entries, as push and promote do)."""
    store = _store(store)
    with _locked(store):
        _clean_stale(store, STALE_SECONDS)  # what a killed push, promote or rollback left
        prod = read_production(store)
        if prod is None:
            raise RegistryError(f"nothing to roll back: {store.models / PRODUCTION_FILE} does not exist")
        if not prod["history"]:
            raise RegistryError(f"nothing to roll back to: {prod['version']} is the first production version")
        previous = prod["history"][-1]
        verify_version(store, previous)
        result = _write_production(store, previous, prod["history"][:-1], keep)
        return result | {"changed": True, "previous": prod["version"]}


def push(cfg: Config, run_ref: str, assemble: Assembler, *, against: str | None, reason: str) -> dict[str, Any]:
    """Make the release of training run ``run_ref`` (e.g. "models/runs/<id>") the next production version.

    ``assemble(staging)`` fills an empty staging folder (one sub-folder per part) and returns metadata
    fields; the registry adds version, created_at, run, replaced, reason and the file digests, renames the
    version into place and moves production.json. ``against`` is the production version the verdicts were
    judged against: a push finding another production is refused as stale. A run already pushed is a
    no-op (a re-run DAG stays idempotent), or the end of its interrupted push. All under the registry lock.
    """
    if not isinstance(run_ref, str) or not run_ref.strip():
        raise RegistryError(f"push needs the training run it releases, e.g. 'models/runs/<id>'; "
                            f"got {run_ref!r}")
    store = Store(cfg.store)
    with _locked(store):
        _clean_stale(store, STALE_SECONDS)
        existing = pushed_as(store, run_ref)
        if existing:
            return _finish_push(cfg, store, existing, run_ref)
        prod = read_production(store)
        current = prod["version"] if prod else None
        if against != current:
            raise RegistryError(f"the release of {run_ref} was judged against production {against} but "
                                f"production is now {current}: run `trendrec evaluate` again")
        version = _next_version(store)
        _build(store, version, assemble, {"run": run_ref, "replaced": current, "reason": reason})
        return _finish_push(cfg, store, version, run_ref)


def _build(store: Store, version: str, assemble: Assembler, fields: dict[str, Any]) -> None:
    """Fill a staging folder of this push's own, check and digest it, rename it to ``models/<version>``."""
    staging, fd = held_folder(store.models, STAGING_PREFIX)
    try:
        metadata = assemble(staging)
        if not isinstance(metadata, dict):
            raise RegistryError(f"the assembler returned {type(metadata).__name__}, "
                                f"not a dict of metadata fields")
        metadata = metadata | fields | {
            "version": version, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        metadata[FILES_KEY] = file_digests(staging)  # refuses symlinks and special files
        write_json(metadata, staging / METADATA_FILE)
        _required_files(staging, f"{version} (being pushed)")
        (staging / PENDING_FILE).touch()  # moves in with the version: "production.json not written yet"
        os.rename(staging, store.models / version)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone after the rename; what a failure left otherwise
        os.close(fd)


def _finish_push(cfg: Config, store: Store, version: str, run_ref: str) -> dict[str, Any]:
    """Make a just-renamed (or an interrupted push's) version production, unless that already happened.

    A version still holding PENDING_FILE was renamed into place by a push that did not get to write
    production.json: it becomes production now if production is still the version it replaced. A
    version without the marker was pushed completely before (a re-run is a no-op).
    """
    path = store.models / version
    pending = path / PENDING_FILE
    if not pending.exists():
        return {"pushed": False, "run": run_ref, "version": version,
                "reason": f"{run_ref} was already pushed as {version}"}
    prod = read_production(store)
    current = prod["version"] if prod else None
    meta = read_metadata(path)
    replaced = meta.get("replaced")
    if current not in (version, replaced):
        pending.unlink()
        raise RegistryError(f"{version} was pushed but production moved from {replaced} to {current} before it "
                            f"was promoted; promote it with `trendrec models promote {version}` if wanted")
    keep = keep_versions(cfg)
    if current != version:
        _write_production(store, version, (prod["history"] + [current]) if prod else [], keep)
    pending.unlink()
    log.info("pushed %s as %s", run_ref, version)
    return {"pushed": True, "run": run_ref, "version": version, "model_dir": str(path),
            "reason": meta.get("reason"), "previous": current if current != version else replaced,
            "pruned": _prune(store, keep),
            "parts": meta.get(PARTS_KEY), "segments": meta.get("segments")}


def clean_stale(store: Store | str | os.PathLike, older_than: float = STALE_SECONDS) -> list[str]:
    """Remove what a killed push, promote or prune left in models/: staging folders no live process
    holds, trash folders, and production.json temp files untouched for ``older_than`` seconds."""
    store = _store(store)
    if not store.models.is_dir():
        return []
    with _locked(store):
        return _clean_stale(store, older_than)


def _clean_stale(store: Store, older_than: float) -> list[str]:
    models, cutoff = store.models, time.time() - older_than
    removed = prune_folders(models, STAGING_PREFIX, keep=set())  # skips a folder whose builder is alive
    for entry in models.glob(".*"):
        name = entry.name
        odd_staging = name.startswith(STAGING_PREFIX) and (entry.is_symlink() or not entry.is_dir())
        stale = name.startswith(".trash-") or odd_staging or (
            name.startswith(f".{PRODUCTION_FILE}.") and name.endswith(".tmp") and entry.lstat().st_mtime < cutoff)
        if stale:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(name)
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
    with _locked(store):
        return _prune(store, keep)


def _prune(store: Store, keep: int) -> list[str]:
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


def _next_version(store: Store) -> str:
    existing = versions(store)
    return f"v{(int(existing[-1][1:]) + 1 if existing else 1):04d}"
