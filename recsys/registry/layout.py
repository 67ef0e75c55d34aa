"""The layout of models/ as read: version names, the files a version needs, metadata.json, production.json.

Part of the model registry: ``recsys.registry`` re-exports every public name of this module, and callers
import the registry, never this module. Nothing here takes the registry lock or writes a file:
``versions`` lists the version folders, ``version_dir`` checks that one holds the files a loadable
version needs, ``read_metadata`` and ``read_production`` read the JSON, ``Release`` is a verified
version with its parts, ``list_models`` gives the rows of ``trendrec models list`` and ``pushed_as`` the
version a training run was pushed as.

    trendrec models list
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import TrendrecError
from pipeline.store import Store, read_json

VERSION_RE = re.compile(r"^v\d{4,}$")
PRODUCTION_FILE = "production.json"
METADATA_FILE = "metadata.json"
TREND_FILE = "trend.parquet"
FILES_KEY = "files"  # metadata.json: {relative path: sha256} of every other file of the version
PARTS_KEY = "parts"  # metadata.json: {part name: its fields}; absent in versions pushed before parts
TREND_WEIGHT_KEY = "segment_trends"  # metadata.json: the segment-trend weight chosen at push (recsys.release)
# The forecaster's files, one of these sets: a combination (an LSTM member adds model.keras and
# recommender.json, listed in the digests like every file), or an LSTM saved before combinations existed.
FORECASTER_FILES = (("combination.json",), ("model.keras", "recommender.json"))
# In a version directory while its push has not yet written production.json (see recsys.registry._finish_push).
PENDING_FILE = ".pending-production"


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
