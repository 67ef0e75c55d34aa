"""The training parts' staging folders beside ``models/runs/<id>/<family>/``: a folder a killed attempt
left (``.forecast.*``, ``.nextbasket.*``, ``.value.*``, or a ``.<family>.old-*`` set aside by a switch) is
removed when the next attempt starts; one a live attempt holds (its flock, held here by the test) stays,
and the forecast's backup, which a resumed training reads, stays too. The new staging folders take the
umask's mode, so a service run by another user can read what they become. The two customer families,
which the DAGs train side by side into one run, leave each other's entries alone."""

import os
import stat

import pytest

from pipeline.snapshots import held_folder
from pipeline.store import Store
from recsys import runs
from recsys.forecast import train as forecast_train
from recsys.value import part as value_part


def _start_forecast(run):
    return runs.part_staging(run, "forecast", keep={forecast_train.BACKUP})  # as recsys.forecast.train starts


def _start_nextbasket(run):
    return runs.part_staging(run, "nextbasket")  # as recsys.nextbasket.train starts


def _start_value(run):
    return runs.part_staging(run, value_part.NAME)  # as recsys.value.part.train starts


@pytest.mark.parametrize("family, start", [("forecast", _start_forecast), ("nextbasket", _start_nextbasket),
                                           ("value", _start_value)])
def test_a_dead_attempts_staging_goes_and_a_live_ones_stays(tmp_path, family, start):
    run = runs.create(Store(tmp_path / "store").ensure(), "r1")
    dead = [run.root / f".{family}.00000000000000000001-dead", run.root / f".{family}.old-1"]
    for folder in dead:
        folder.mkdir()
        (folder / "half.bin").write_bytes(b"x")
    live, live_fd = held_folder(run.root, f".{family}.")
    backup = run.root / forecast_train.BACKUP
    backup.mkdir()
    old_umask = os.umask(0o022)
    try:
        staging, fd = start(run)
        os.close(fd)
    finally:
        os.umask(old_umask)
        os.close(live_fd)
    assert not any(folder.exists() for folder in dead)
    assert live.is_dir() and staging.is_dir() and staging != live
    assert backup.is_dir() or family != "forecast"  # the forecast's resume state is not a leftover
    assert stat.S_IMODE(staging.stat().st_mode) == 0o755



def test_the_customer_families_trained_side_by_side_never_touch_each_others_entries(tmp_path):
    """The DAGs train next-basket and value at once into one run (recsys.flow.upstream_of): each start
    removes only its own family's leftovers, each switch replaces only its own folder, and run.json is
    written once, when the run is made. Here value's prepared set (``.value.sharded``, which its shards
    read while next-basket trains) stands while next-basket starts, and next-basket's staging folder, as
    if unheld, while value's set is switched in."""
    run = runs.create(Store(tmp_path / "store").ensure(), "r1")
    run_file = (run.root / runs.RUN_FILE).read_bytes()
    building, value_fd = _start_value(run)  # value's prepare: fits aside, then renames to .value.sharded
    (building / "value.parquet").write_bytes(b"v")
    prepared = value_part.sharded_folder(run)
    os.rename(building, prepared)
    os.close(value_fd)
    staging, fd = _start_nextbasket(run)  # next-basket starts while value's shards read the prepared set
    os.close(fd)
    assert prepared.is_dir()
    runs.switch_folder(prepared, run.part("value"))  # value's join
    assert staging.is_dir()
    (staging / "model.keras").write_bytes(b"m")
    runs.switch_folder(staging, run.part("nextbasket"))
    again, fd = _start_value(run)  # a value retry starts: next-basket's part stays
    os.close(fd)
    assert (run.part("value") / "value.parquet").read_bytes() == b"v"
    assert (run.part("nextbasket") / "model.keras").read_bytes() == b"m"
    assert (run.root / runs.RUN_FILE).read_bytes() == run_file
