"""Two real processes pushing at once leave production verified (issue: 4 of 4 concurrent pushes broke it).

Each child waits for a shared start signal, then pushes through ``registry.push`` with an assembler that
writes its files slowly, so both builds overlap. Whatever the order, the store must end with production
verified, every version complete with exactly the files its digests list, and no staging folder left.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.store import Store
from recsys import registry

ROOT = Path(__file__).resolve().parents[2]
TRENDS = pd.DataFrame({s.SEGMENT: ["a", "b"], s.TREND: [0.5, -0.5]})
ROUNDS = 3

CHILD = """
import dataclasses, json, sys, time
from pathlib import Path
import pandas as pd
from pipeline.config import load_config
from pipeline.store import write_json
from recsys import registry

store, run, against, go = sys.argv[1], sys.argv[2], sys.argv[3] or None, Path(sys.argv[4])
cfg = dataclasses.replace(load_config(None), store=store)

def assemble(staging):
    forecast = staging / "forecast"
    forecast.mkdir()
    for i in range(5):  # slowly, so the other process builds at the same time
        (forecast / f"member{i}.bin").write_bytes(run.encode() * 1000)
        time.sleep(0.02)
    pd.DataFrame({"segment": ["a"], "trend": [0.1]}).to_parquet(forecast / "trend.parquet")
    write_json({"members": ["member0"]}, forecast / "combination.json")
    return {"parts": {"forecast": {"ships": "run", "holdout_mase": 0.5}}}

print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
try:
    out = registry.push(cfg, run, assemble, against=against, reason="concurrency test")
except registry.RegistryError as exc:
    out = {"error": str(exc)}
print(json.dumps(out), flush=True)
"""


def _push_at_once(store: Store, runs: list[str], against: str | None, go: Path) -> list[dict]:
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(store.root), run, against or "", str(go)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT) for run in runs]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    go.touch()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
        results.append(json.loads(out.strip().splitlines()[-1]))
    go.unlink()
    return results


def _check_store(store: Store) -> None:
    """Production verified; every version holds exactly metadata.json and the files its digests list."""
    release = registry.production(store)
    assert release is not None and release.trend_file.is_file()
    for version in registry.versions(store):
        path = registry.verify_version(store, version)
        files = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
        assert files == {registry.METADATA_FILE, *registry.read_metadata(path)["files"]}, version
    assert not list(store.models.glob(".staging-*")) and not list(store.models.glob(".production.json.*"))


@pytest.mark.parametrize("same_run", [False, True], ids=["two-runs", "one-run-twice"])
def test_two_pushes_at_once_leave_production_verified(small_config, push_parts, tmp_path, same_run):
    store = Store(small_config.store)
    push_parts(small_config, TRENDS)
    for n in range(ROUNDS):
        before = registry.versions(store)
        against = registry.read_production(store)["version"]
        runs = [f"models/runs/r{n}"] * 2 if same_run else [f"models/runs/r{n}a", f"models/runs/r{n}b"]
        results = _push_at_once(store, runs, against, tmp_path / "go")
        pushed = [r for r in results if r.get("pushed")]
        assert len(pushed) == 1, results
        other = next(r for r in results if not r.get("pushed"))
        expected = "already pushed as" if same_run else "judged against production"
        assert expected in (other.get("reason") or other.get("error", "")), results
        assert registry.versions(store) == before + [pushed[0]["version"]]
        assert registry.read_production(store)["version"] == pushed[0]["version"]
        _check_store(store)
