"""benchmarks/nightly_scale.py: its shop re-buys (favourites recur at their customer's cycle, checked by the
script itself with ``--check`` on a tiny shop: tests import no benchmark code), and the night it times is the
flow's: the last day's ingest, ``recsys.flow.RETRAIN``, push and rerank, each with its stage's command, the
stages the DAG runs at once (``recsys.flow.upstream_of``: the two customer families' training) side by side.

    .venv/bin/python -m pytest tests/core/test_nightly_scale.py -q
"""

from recsys.flow import RETRAIN, stage, upstream_of
from tests.conftest import ROOT, python_process

SCRIPT = ROOT / "benchmarks" / "nightly_scale.py"


def test_the_rebuy_shop_keeps_its_cycles():
    done = python_process(SCRIPT, "--check", cwd=ROOT)
    assert (done.returncode, done.stdout) == (0, "shop ok\n"), done.stdout + done.stderr[-2000:]


def test_the_night_is_the_flows_retrain_between_ingest_and_rerank():
    names = ("ingest", *RETRAIN, "push", "rerank")
    done = python_process(SCRIPT, "--stages", "--one-at-a-time", cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [f"{name} {stage(name).command}" for name in names]
    done = python_process(SCRIPT, "--stages", cwd=ROOT)  # as the DAG runs them: what waits for the same runs at once
    assert done.returncode == 0, done.stderr[-2000:]
    groups = [[part.split()[0] for part in line.split(" ‖ ")] for line in done.stdout.splitlines()]
    assert [name for group in groups for name in group] == list(names)
    assert ["train_nextbasket", "train_value"] in groups and all(len(group) <= 2 for group in groups)
    for group in groups:  # each group starts once every stage it waits for has run
        assert all(set(upstream_of(name)) <= set(names[:names.index(group[0])]) for name in group)
        assert all(set(upstream_of(name)) == set(upstream_of(group[0])) for name in group)
