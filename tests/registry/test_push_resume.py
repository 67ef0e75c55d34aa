"""An interrupted push is finished by its re-run; what a killed push left in models/ is removed.

The crash is simulated between the two steps of a push: the version directory renamed into place,
production.json not yet written (issue 20). Placeholder models: nothing here loads Keras.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.snapshots import held_folder
from pipeline.store import Store, read_json
from recsys import registry

ROOT = Path(__file__).resolve().parents[2]
TRENDS = pd.DataFrame({s.SEGMENT: ["a", "b"], s.TREND: [0.5, -0.5]})
RUN = "models/runs/late"


class Killed(Exception):
    """Stands for the SIGKILL: nothing after the raise runs."""


def _push(cfg, assemble, against):
    return registry.push(cfg, RUN, assemble, against=against, reason="test")


def _push_killed_before_production(cfg, assemble, against, monkeypatch):
    with monkeypatch.context() as patch:
        def die(*args, **kwargs):
            raise Killed()
        patch.setattr(registry, "_write_production", die)
        with pytest.raises(Killed):
            _push(cfg, assemble, against)


def test_rerun_of_a_push_killed_before_production_json_promotes_it(small_config, push_parts, part_assembler,
                                                                   monkeypatch):
    store = Store(small_config.store)
    assert push_parts(small_config, TRENDS) == "v0001"
    _push_killed_before_production(small_config, part_assembler(TRENDS), "v0001", monkeypatch)
    assert (store.models / "v0002").is_dir() and registry.read_production(store)["version"] == "v0001"
    stale = store.models / ".production.json.abc123.tmp"  # what os.replace never renamed
    stale.write_text("{}")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))

    again = _push(small_config, part_assembler(TRENDS), "v0001")
    assert again["pushed"] and again["version"] == "v0002" and again["previous"] == "v0001"
    assert read_json(store.models / "production.json") == {"version": "v0002", "history": ["v0001"]}
    assert not stale.exists() and not (store.models / "v0002" / registry.PENDING_FILE).exists()
    registry.verify_version(store, "v0002")
    third = _push(small_config, part_assembler(TRENDS), "v0002")  # now a true no-op
    assert not third["pushed"] and "already pushed as v0002" in third["reason"]


def test_interrupted_push_is_not_promoted_over_a_newer_production_choice(small_config, push_parts,
                                                                         part_assembler, monkeypatch):
    store = Store(small_config.store)
    push_parts(small_config, TRENDS)
    push_parts(small_config, TRENDS)  # v0002 in production, v0001 on the history
    _push_killed_before_production(small_config, part_assembler(TRENDS), "v0002", monkeypatch)
    registry.rollback(store)  # an operator moved production meanwhile
    with pytest.raises(registry.RegistryError, match="models promote v0003"):
        _push(small_config, part_assembler(TRENDS), "v0002")
    assert registry.read_production(store)["version"] == "v0001"
    assert not _push(small_config, part_assembler(TRENDS), "v0002")["pushed"]


HOLDER = """
import sys, time
from pathlib import Path
from pipeline.snapshots import held_folder
folder, fd = held_folder(Path(sys.argv[1]), ".staging-")
print(folder, flush=True)
time.sleep(600)
"""


def test_clean_stale_removes_staging_folders_of_dead_processes_only(small_config, push_parts):
    store = Store(small_config.store)
    push_parts(small_config, TRENDS)
    models = store.models
    killed = subprocess.Popen([sys.executable, "-c", HOLDER, str(models)], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT)
    dead = models / os.path.basename(killed.stdout.readline().strip())
    assert registry.clean_stale(store) == [] and dead.is_dir()  # its builder is alive: kept
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    live, fd = held_folder(models, ".staging-")  # held by this process: a live push
    (models / ".staging-v0002").mkdir()  # the old fixed name: nobody holds it
    (models / ".trash-v0000").mkdir()
    fresh = models / ".production.json.live.tmp"
    fresh.write_text("{}")
    try:
        assert sorted(registry.clean_stale(store)) == sorted([dead.name, ".staging-v0002", ".trash-v0000"])
        assert fresh.exists() and live.is_dir()
    finally:
        os.close(fd)
    assert registry.clean_stale(store) == [live.name]
