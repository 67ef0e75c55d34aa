"""What the README, the DAG pages and the CLI help say stays what the code does (cheap checks, no training).

The README's retrain diagram and the retrain DAG's page name ``recsys.flow.RETRAIN`` in order; ``backtest
--help`` names every forecast member; ``trendrec demo`` on the built-in defaults names the fix; the
README quotes the demo's figures as ``benchmarks/demo_figures.json`` (written by
``benchmarks/demo_figures.py`` from a ``trendrec demo --json`` run) records them.

    .venv/bin/python -m pytest tests/test_docs.py -q
"""

from __future__ import annotations

import ast
import json
import re

import pytest

from pipeline.config import ConfigError, load_config
from recsys import cli, flow
from recsys.forecast.members import MEMBERS
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_retrain_diagrams_name_the_retrain_chain_in_order():
    line = next(x for x in README.splitlines() if x.startswith("trendrec_retrain ("))
    assert re.findall(r"\w+", line.split(")", 1)[1])[: len(flow.RETRAIN)] == list(flow.RETRAIN), line
    page = ast.get_docstring(ast.parse((ROOT / "dags" / "trendrec_retrain.py").read_text(encoding="utf-8")))
    chain = next(x for x in page.splitlines() if x.startswith("**aggregate"))
    assert re.findall(r"\w+", chain)[: len(flow.RETRAIN)] == list(flow.RETRAIN), chain


def test_backtest_help_names_every_member():
    assert all(member in cli.COMMANDS["backtest"].help for member in MEMBERS)


def test_a_demo_on_the_built_in_defaults_names_the_config_to_pass(monkeypatch, tmp_path):
    monkeypatch.delenv("TRENDREC_CONFIG", raising=False)
    with pytest.raises(ConfigError, match=r"no event log.*--config trendrec\.toml"):
        flow.run_all(load_config(None, store=str(tmp_path / "store")))
    assert not (tmp_path / "store").exists()  # refused before any stage touched the store


def test_the_readme_quotes_the_demo_figures_benchmarks_recorded():
    record = json.loads((ROOT / "benchmarks" / "demo_figures.json").read_text(encoding="utf-8"))
    start = README.index("**What `make demo` ends with today**")
    paragraph = README[start: README.index("\n\n", start)]
    for path, figure in record["figures"].items():
        quoted = re.escape(figure["quoted"])
        assert re.search(rf"(?<![\w.,]){quoted}(?!\w|[.,]\d)", paragraph), (
            f"README's demo paragraph does not quote {path} = {figure['quoted']} "
            f"(benchmarks/demo_figures.json, {record['recorded']}): quote what the demo prints")
