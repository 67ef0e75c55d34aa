"""A push, promote or rollback starts by removing what killed registry runs left in models/ (a
``.staging-*`` folder no live process holds, an old production.json temp file) and leaves a live
push's staging folder (its flock, held here by the test) alone; a pushed version's folders take the
umask's mode (0755 under umask 022), so a service run by another user can read them."""

import os
import stat

import pandas as pd
import pytest

from pipeline.snapshots import held_folder
from pipeline.store import Store
from recsys import registry

TRENDS = pd.DataFrame({"segment": ["a", "b"], "trend": [0.5, -0.5]})


def test_a_dead_pushs_staging_goes_at_the_next_push_and_a_live_ones_stays(small_config, push_parts):
    store = Store(small_config.store).ensure()
    dead = store.models / f"{registry.STAGING_PREFIX}00000000000000000001-dead"
    (dead / "forecast").mkdir(parents=True)
    live, fd = held_folder(store.models, registry.STAGING_PREFIX)
    try:
        assert push_parts(small_config, TRENDS) == "v0001"
        assert not dead.exists() and live.is_dir()
    finally:
        os.close(fd)
    assert push_parts(small_config, TRENDS) == "v0002"
    assert not list(store.models.glob(f"{registry.STAGING_PREFIX}*"))


@pytest.mark.parametrize("umask, mode", [(0o022, 0o755), (0o027, 0o750)])
def test_a_pushed_versions_folders_take_the_umasks_mode(small_config, push_parts, umask, mode):
    old = os.umask(umask)
    try:
        version = push_parts(small_config, TRENDS, nextbasket="run")
    finally:
        os.umask(old)
    root = registry.version_dir(Store(small_config.store), version)
    folders = [root, *(p for p in root.rglob("*") if p.is_dir())]
    assert len(folders) >= 3  # the version, forecast/ and nextbasket/
    assert {str(p.relative_to(root)): oct(stat.S_IMODE(p.stat().st_mode)) for p in folders} == {
        str(p.relative_to(root)): oct(mode) for p in folders}


def test_promote_and_rollback_start_by_removing_what_killed_registry_runs_left(small_config, push_parts):
    """A production.json temp file a killed promote left (past the live-file grace) and a dead push's
    staging folder go at the next promote or rollback, not only at the next push."""
    store = Store(small_config.store).ensure()
    push_parts(small_config, TRENDS)
    push_parts(small_config, TRENDS)
    for flip in (lambda: registry.promote(store, "v0001"), lambda: registry.rollback(store)):
        temp = store.models / f".{registry.PRODUCTION_FILE}.killed.tmp"
        temp.write_text('{"vers')
        old = os.stat(temp).st_mtime - registry.STALE_SECONDS - 1
        os.utime(temp, (old, old))
        dead = store.models / f"{registry.STAGING_PREFIX}00000000000000000001-dead"
        dead.mkdir()
        flip()
        assert not temp.exists() and not dead.exists()
    assert registry.read_production(store)["version"] == "v0002"
