"""Copying files into a version and digesting them: regular files only, never a link.

Part of the model registry: ``recsys.registry`` re-exports ``copy_part_files`` and ``file_digests``, and
callers import the registry, never this module. A part copies its files into the staging folder of a
push with ``copy_part_files``; ``file_digests`` gives the SHA-256 of every file of the version being
pushed, for its metadata.json. Both refuse a symlink, a special file or a path that leads outside the
folder, with a RegistryError naming it.

    python -c "from recsys import registry; \
print(registry.file_digests(registry.version_dir('trendrec-data', 'v0001')))"
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from recsys.registry.layout import METADATA_FILE, PENDING_FILE, RegistryError


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
