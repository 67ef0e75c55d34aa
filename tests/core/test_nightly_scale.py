"""benchmarks/nightly_scale.py: its shop re-buys (favourites recur at their customer's cycle, checked by the
script itself with ``--check`` on a tiny shop: tests import no benchmark code), and the night it times is the
flow's: the last day's ingest, ``recsys.flow.RETRAIN``, push and rerank, each with its stage's command.

    .venv/bin/python -m pytest tests/core/test_nightly_scale.py -q
"""

from recsys.flow import RETRAIN, stage
from tests.conftest import ROOT, python_process

SCRIPT = ROOT / "benchmarks" / "nightly_scale.py"


def test_the_rebuy_shop_keeps_its_cycles():
    done = python_process(SCRIPT, "--check", cwd=ROOT)
    assert (done.returncode, done.stdout) == (0, "shop ok\n"), done.stdout + done.stderr[-2000:]


def test_the_night_is_the_flows_retrain_between_ingest_and_rerank():
    done = python_process(SCRIPT, "--stages", cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    names = ("ingest", *RETRAIN, "push", "rerank")
    assert done.stdout.splitlines() == [f"{name} {stage(name).command}" for name in names]
