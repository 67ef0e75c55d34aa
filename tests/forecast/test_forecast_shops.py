"""benchmarks/forecast_shops.py's shops: the synthetic one always, the real ones when ../shared/data has them.

The checks live in the script (``--check``), run here as a program: tests import no benchmark code.

    .venv/bin/python -m pytest tests/forecast/test_forecast_shops.py -q
"""

import subprocess
import sys

from tests.conftest import ROOT


def test_shop_loaders_keep_their_promises():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "forecast_shops.py"), "--check"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert done.stdout.startswith("shops ok"), done.stdout
