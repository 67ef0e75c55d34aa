"""The model registry: numbered versions under ``models/`` and the production pointer.

A version is a folder ``models/vNNNN/`` holding one sub-folder per part (``forecast/``, ``nextbasket/``,
``value/``) and metadata.json: the parts' own fields (``parts``: what each ships and why), the registry's
(version, created_at, run, replaced, reason) and ``files``, the SHA-256 of every other file of the version.
The registry deals in files and JSON only and imports no model code. ``models/production.json`` names the
version in production plus the stack of earlier production versions, so ``rollback`` can step back.

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

import hashlib
import logging
import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.config import Config, RegistryConfig
from pipeline.errors import TrendrecError
from pipeline.snapshots import held_folder, locked
from pipeline.snapshots import prune as prune_folders
from pipeline.store import Store, read_json, write_json

log = logging.getLogger(__name__)

VERSION_RE = re.compile(r"^v\d{4,}$")
PRODUCTION_FILE = "production.json"
METADATA_FILE = "metadata.json"
TREND_FILE = "trend.parquet"
FILES_KEY = "files"  # metadata.json: {relative path: sha256} of every other file of the version
PARTS_KEY = "parts"  # metadata.json: {part name: its fields}; absent in versions pushed before parts
TREND_WEIGHT_KEY = "segment_trends"  # metadata.json: the segment-trend weight chosen at push (recsys.release)
LOCK_FILE = ".registry.lock"  # in models/: the flock push, promote, rollback, prune and clean_stale hold
STAGING_PREFIX = ".staging-"  # in models/: a version being built (a held_folder)
# Fills the empty staging folder of a version (one sub-folder per part) and returns metadata fields.
Assembler = Callable[[Path], dict[str, Any]]
# The forecaster's files, one of these sets: a combination (an LSTM member adds model.keras and
# recommender.json, listed in the digests like every file), or an LSTM saved before combinations existed.
FORECASTER_FILES = (("combination.json",), ("model.keras", "recommender.json"))
# In a version directory while its push has not yet written production.json (see _finish_push).
PENDING_FILE = ".pending-production"
STALE_SECONDS = 60.0  # a production.json temp file untouched this long belongs to a dead process


class RegistryError(TrendrecError):
    """A version is missing, malformed or cannot become production."""


def _store(store: Store | str | os.PathLike) -> Store:
    return store if isinstance(store, Store) else Store(store)


@contextmanager
def _locked(store: Store) -> Iterator[None]:
    """The registry lock: one push, promote, rollback, prune or clean_stale at a time (not re-entrant)."""
    with locked(store.models / LOCK_FILE):
        yield


def check_version(version: str) -> str:
    """Refuse anything but ``vNNNN`` so a user-given name can never point outside models/."""
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise RegistryError(f"invalid model version {version!r}: expected v and 4+ digits, e.g. v0002")
    return version


def versions(store: Store | str | os.PathLike) -> list[str]:
    """Every version directory, oldest first (staging and trash folders are not versions)."""
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
    for name in _required_files(path, version):
        _contained(path, path / name, version)
    return path


def _required_files(path: Path, version: str) -> list[str]:
    """metadata.json plus the forecast part's trend table and forecaster files; RegistryError naming the
    missing ones. The forecast part is ``forecast/`` when metadata.json has parts, else the version's root."""
    has_meta = (path / METADATA_FILE).is_file()
    parts = read_metadata(path).get(PARTS_KEY) if has_meta else None
    if parts is not None and not isinstance(parts, dict):
        raise RegistryError(f"{path / METADATA_FILE}: '{PARTS_KEY}' is not a mapping; push the model again")
    part = "forecast/" if parts is not None or (not has_meta and (path / "forecast").is_dir()) else ""
    required = [METADATA_FILE, part + TREND_FILE]
    missing = [name for name in required if not (path / name).is_file()]
    sets = [[part + n for n in names] for names in FORECASTER_FILES]
    forecaster = next((names for names in sets if all((path / n).is_file() for n in names)), None)
    if forecaster is None:
        missing.append(" or ".join("+".join(names) for names in sets))
    if missing:
        raise RegistryError(f"model version {version} at {path} is incomplete: missing {', '.join(missing)}")
    return required + forecaster


def _contained(version_path: Path, file: Path, version: str) -> None:
    """Refuse a version directory or file that is, or resolves through, a symlink out of the version."""
    real = version_path.parent.resolve() / version_path.name
    if version_path.is_symlink() or (file != version_path and real not in file.resolve().parents):
        raise RegistryError(f"model version {version}: {file} is a symlink out of {real}; the registry "
                            f"never makes links: remove it or push again")


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
    """{path relative to ``directory``: sha256} of every file below it but its own metadata.json and marker."""
    names = _walk_files(directory, "version being pushed", exclude=(METADATA_FILE, PENDING_FILE))
    return {name: _sha256(directory / name) for name in names}


def _walk_files(folder: Path, what: str, exclude: tuple[str, ...] = ()) -> list[str]:
    """The regular files below ``folder`` as sorted relative POSIX paths (``exclude``: top-level names).

    RegistryError naming the first symlink or special file met: the registry copies regular files only."""
    found, root = [], folder.resolve()
    for parent, dirs, files in os.walk(folder):  # never follows a linked folder: it is refused below
        for name in sorted(dirs) + sorted(files):
            entry = Path(parent, name)
            mode = entry.lstat().st_mode
            if stat.S_ISLNK(mode) or not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                kind = "a symlink" if stat.S_ISLNK(mode) else "not a regular file"
                raise RegistryError(f"{entry} in the {what} is {kind}; parts copy regular files only "
                                    f"(registry.copy_part_files), never links: remove it and push again")
            if root not in entry.resolve().parents:  # no link on the way, so only if the folder moved
                raise RegistryError(f"{entry} resolves outside {root}; the {what} changed while it was read")
            if stat.S_ISREG(mode):
                found.append(entry.relative_to(folder).as_posix())
    return sorted(name for name in found if name not in exclude)


def copy_part_files(src: Path, dst: Path, names: Iterable[str] | None = None) -> list[str]:
    """Copy regular files from ``src`` to the same relative paths under ``dst`` (parents made): ``names``,
    or every file below ``src``. RegistryError naming the file for a symlink, a missing or special file,
    or a name that leads outside ``src``. Returns the names copied."""
    src, dst = Path(src), Path(dst)
    if src.is_symlink() or not src.is_dir():
        raise RegistryError(f"{src} is not a folder (or is a symlink): a part copies files from its own folder")
    names = _walk_files(src, "part's source folder") if names is None else [str(n) for n in names]
    root = src.resolve()
    for name in names:
        file = _source_file(src, root, name)
        target = dst.joinpath(*PurePosixPath(name).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target, follow_symlinks=False)
    return names


def _source_file(src: Path, root: Path, name: str) -> Path:
    """``src/name`` checked: a relative name without '..', no symlink on the way, a regular file inside."""
    rel = PurePosixPath(name)
    if rel.is_absolute() or not rel.parts or ".." in rel.parts:
        raise RegistryError(f"{name!r}: a part file must be named relative to {src}, without '..'")
    file = src
    for part in rel.parts:
        file = file / part
        if file.is_symlink():
            raise RegistryError(f"{file} is a symlink; parts copy regular files only: replace it with the file")
    if not file.exists() or not stat.S_ISREG(file.lstat().st_mode):
        raise RegistryError(f"{file} is missing or not a regular file: cannot copy it into the version")
    if root not in file.resolve().parents:
        raise RegistryError(f"{file} resolves outside {root}: a part copies only files of its own folder")
    return file


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


def _write_production(store: Store, version: str, history: list[str], keep: int) -> dict[str, Any]:
    """Replace production.json atomically; the history keeps its last ``keep`` entries (all when <= 0)."""
    prod = {"version": version, "history": history[-keep:] if keep > 0 else history}
    write_json(prod, store.models / PRODUCTION_FILE)
    log.info("production is now %s (history %s)", version, prod["history"])
    return prod


def list_models(store: Store | str | os.PathLike) -> list[dict[str, Any]]:
    """One row per version: version, created_at, forecaster (what ships), mase (its hold-out MASE),
    baseline_mase, nextbasket and value (what ships, or None), is_production."""
    store = _store(store)
    prod = read_production(store)
    rows = []
    for version in versions(store):
        path = store.models / version
        meta = read_metadata(path) if (path / METADATA_FILE).is_file() else {}
        shipped = _parts_row(meta) if PARTS_KEY in meta else _legacy_row(meta)
        rows.append({"version": version, "created_at": meta.get("created_at"), **shipped,
                     "is_production": prod is not None and prod["version"] == version})
    return rows


def _entry(mapping: Any, key: str) -> dict[str, Any]:
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return value if isinstance(value, dict) else {}


def _parts_row(meta: dict[str, Any]) -> dict[str, Any]:
    """What a version with parts ships, from each part's own fields."""
    parts = meta.get(PARTS_KEY)
    forecast = _entry(parts, "forecast")
    return {"forecaster": forecast.get("ships"), "mase": forecast.get("holdout_mase"),
            "baseline_mase": forecast.get("baseline_mase"),
            "nextbasket": _entry(parts, "nextbasket").get("ships"),
            "value": _entry(parts, "value").get("ships")}


def _legacy_row(meta: dict[str, Any]) -> dict[str, Any]:
    """What a version pushed before parts ships: ``segment_forecaster`` (source, member, holdout_mase)
    when recorded, so a rejected candidate's MASE is never shown as the shipped one; else the candidate.
    The candidate is called "run", as a part's ``ships`` calls the run's own model."""
    metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
    kept = _entry(meta, "segment_forecaster")
    source = kept.get("source", "candidate")
    forecaster = kept.get("member") if source == "baseline" else "run" if source == "candidate" else source
    mase = kept.get("holdout_mase") if kept else _entry(metrics, "model").get("mase")
    nextbasket = _entry(meta, "customers").get("model")
    return {"forecaster": forecaster, "mase": mase,
            "baseline_mase": _entry(metrics, "seasonal_naive").get("mase"),
            "nextbasket": "run" if nextbasket == "candidate" else nextbasket, "value": None}


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


def pushed_as(store: Store | str | os.PathLike, run_ref: str | os.PathLike) -> str | None:
    """The version that records ``run_ref`` as its run (a path: as the candidate of a version pushed
    before runs, relative to the store when inside it), or None."""
    store = _store(store)
    refs = {run_ref} if isinstance(run_ref, str) else {_path_ref(store, Path(run_ref))}
    for version in versions(store):
        if (store.models / version / METADATA_FILE).is_file():
            meta = read_metadata(store.models / version)
            if meta.get("run") in refs or meta.get("candidate") in refs:
                return version
    return None


def _path_ref(store: Store, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(store.root))
    except ValueError:
        return str(path.resolve())
