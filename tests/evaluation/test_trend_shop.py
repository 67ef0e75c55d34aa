"""benchmarks/trend_shop.py: the cold-start shop (guests, new customers, segments that rise and fall) is what
its docstring says, checked by the script itself (``--check``): tests import no benchmark code.

    .venv/bin/python -m pytest tests/evaluation/test_trend_shop.py -q
"""

from tests.conftest import ROOT, python_process


def test_the_trend_shop_keeps_its_promises():
    done = python_process(ROOT / "benchmarks" / "trend_shop.py", "--check", cwd=ROOT)
    assert (done.returncode, done.stdout) == (0, "shop ok\n"), done.stdout + done.stderr[-2000:]
