"""Test-wide setup: a private Airflow home and quiet TensorFlow, set before anything imports them."""

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = ROOT / "trendrec.toml"
DEMO_EVENTS = ROOT / "data" / "demo" / "online_retail.parquet"

_airflow_home = tempfile.mkdtemp(prefix="trendrec-airflow-")
os.environ["AIRFLOW_HOME"] = _airflow_home
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PARALLELISM"] = "2"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
for var in ("TRENDREC_STORE", "TRENDREC_CONFIG"):  # tests choose their own store and config
    os.environ.pop(var, None)
