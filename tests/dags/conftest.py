"""Real Airflow for DAG tests: a fresh SQLite metadata database in the test-wide AIRFLOW_HOME; helpers of
the tests that start Airflow's own processes (a free loopback port, the API server's health)."""

import socket
import urllib.request

import pytest


def free_port() -> int:
    """A free TCP port on the loopback interface, never 8080 (Airflow's default)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != 8080:
            return port


def api_healthy(port: int) -> bool:
    """Whether an Airflow API server answers its health check on ``port``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def airflow_db():
    from airflow.utils import db

    db.resetdb()
    yield


@pytest.fixture(scope="session")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    return DagBag(dag_folder=str(ROOT / "dags"))
