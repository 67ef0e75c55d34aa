"""A push never copies a user folder or follows a symlink out of the store (the hostile probe's defect 2).

Parts copy files into the staging folder with ``registry.copy_part_files``, which copies regular files
only; the registry refuses whatever else an assembler leaves there before it digests anything.
"""

import os

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.store import Store
from recsys import registry
from recsys.registry import RegistryError

TRENDS = pd.DataFrame({s.SEGMENT: ["a"], s.TREND: [0.25]})


@pytest.fixture
def run_part(tmp_path):
    """A part folder of a run: model.json, sub/weights.bin."""
    part = tmp_path / "run" / "forecast"
    (part / "sub").mkdir(parents=True)
    (part / "model.json").write_text('{"units": 8}')
    (part / "sub" / "weights.bin").write_bytes(b"\x00\x01")
    return part


def test_copy_part_files_copies_regular_files_and_makes_parents(run_part, tmp_path):
    dst = tmp_path / "staging" / "forecast"
    assert registry.copy_part_files(run_part, dst) == ["model.json", "sub/weights.bin"]
    assert (dst / "sub" / "weights.bin").read_bytes() == b"\x00\x01" and not (dst / "sub").is_symlink()
    other = tmp_path / "other"
    assert registry.copy_part_files(run_part, other, ["sub/weights.bin"]) == ["sub/weights.bin"]
    assert [p.name for p in other.rglob("*") if p.is_file()] == ["weights.bin"]


def test_copy_part_files_refuses_links_and_names_out_of_the_part(run_part, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("user data")
    os.symlink(secret, run_part / "link.txt")
    with pytest.raises(RegistryError, match=r"link.txt in the part's source folder is a symlink"):
        registry.copy_part_files(run_part, tmp_path / "dst")
    with pytest.raises(RegistryError, match=r"link.txt is a symlink"):
        registry.copy_part_files(run_part, tmp_path / "dst", ["link.txt"])
    (run_part / "link.txt").unlink()
    os.symlink(tmp_path, run_part / "linked_dir")  # a linked folder: the walk never enters it
    with pytest.raises(RegistryError, match=r"linked_dir .*is a symlink"):
        registry.copy_part_files(run_part, tmp_path / "dst")
    with pytest.raises(RegistryError, match=r"linked_dir is a symlink"):
        registry.copy_part_files(run_part, tmp_path / "dst", ["linked_dir/secret.txt"])
    for bad in ("../secret.txt", str(secret)):
        with pytest.raises(RegistryError, match="relative to .*without '..'"):
            registry.copy_part_files(run_part, tmp_path / "dst", [bad])
    with pytest.raises(RegistryError, match="missing.txt is missing or not a regular file"):
        registry.copy_part_files(run_part, tmp_path / "dst", ["missing.txt"])
    assert not (tmp_path / "dst" / "secret.txt").exists()


@pytest.mark.parametrize("plant", ["file_link", "dir_link", "fifo"])
def test_push_refuses_a_staging_folder_holding_links_or_special_files(small_config, push_parts,
                                                                      part_assembler, tmp_path, plant):
    store = Store(small_config.store)
    push_parts(small_config, TRENDS)
    outside = tmp_path / "home"
    outside.mkdir()
    (outside / "id_rsa").write_text("private")

    def assemble(staging):
        fields = part_assembler(TRENDS)(staging)
        if plant == "file_link":
            os.symlink(outside / "id_rsa", staging / "forecast" / "key")
        elif plant == "dir_link":
            os.symlink(outside, staging / "home")
        else:
            os.mkfifo(staging / "forecast" / "pipe")
        return fields

    before = (store.models / registry.PRODUCTION_FILE).read_bytes()
    with pytest.raises(RegistryError, match="version being pushed is (a symlink|not a regular file)"):
        registry.push(small_config, "models/runs/hostile", assemble, against="v0001", reason="test")
    assert (store.models / registry.PRODUCTION_FILE).read_bytes() == before
    assert registry.versions(store) == ["v0001"] and not list(store.models.glob(".staging-*"))
    assert (outside / "id_rsa").read_text() == "private"  # rmtree of the staging folder kept off the link


def test_push_starts_from_an_empty_staging_folder(small_config, part_assembler):
    seen = []

    def assemble(staging):
        seen.append(sorted(p.name for p in staging.iterdir()))
        return part_assembler(TRENDS)(staging)

    registry.push(small_config, "models/runs/r1", assemble, against=None, reason="test")
    assert seen == [[]]
