"""`make airflow AIRFLOW_PORT=N`: the API server and the task runners' execution API use the same port.

Without AIRFLOW__CORE__EXECUTION_API_SERVER_URL the LocalExecutor's task runners call
http://localhost:8080/execution/ whatever port the API server listens on, and every task fails with
a connection error. These tests read what make would run (``make -n``) and the environment its
recipes get, without starting Airflow.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _make(*args: str) -> str:
    out = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), *args], capture_output=True,
                         text=True, timeout=60, check=True)
    return out.stdout


@pytest.mark.parametrize("port", ["8124", "8080"])
def test_the_execution_api_url_follows_airflow_port(port):
    probe = "print-execution-url: ; @echo $$AIRFLOW__CORE__EXECUTION_API_SERVER_URL"
    assert _make("--eval", probe, "print-execution-url", f"AIRFLOW_PORT={port}").strip() == \
        f"http://127.0.0.1:{port}/execution/"


def test_make_airflow_starts_the_api_server_on_the_chosen_port():
    dry = _make("-n", "airflow", "AIRFLOW_PORT=8124")
    assert '--port 8124' in dry and "http://127.0.0.1:8124/api/v2/monitor/health" in dry
    assert ":8080" not in dry
