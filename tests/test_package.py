"""`pip install .` gives a working tool: dependencies declared once, nothing imported undeclared.

pyproject.toml's dependencies and requirements.in's runtime lines are the same list (the lock is
compiled from requirements.in); every third-party module that pipeline/ and recsys/ import belongs to
one of them. The slow test installs the package into a fresh virtualenv, pinned by the lock, and
runs the console script from outside the source tree.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Import name -> distribution, where they differ (pydantic pins its own pydantic-core exactly).
DISTRIBUTION = {"tensorflow": "tensorflow-cpu", "airflow": "apache-airflow", "typing_extensions": "typing-extensions",
                "pydantic_core": "pydantic"}
OWN = {"pipeline", "recsys"}


def _requirements_in() -> tuple[list[str], list[str]]:
    """(runtime, dev) requirement lines of requirements.in; the dev part starts at '# --- dev'."""
    runtime, dev, part = [], [], None
    for line in (ROOT / "requirements.in").read_text().splitlines():
        if line.startswith("# --- runtime"):
            part = runtime
        elif line.startswith("# --- dev"):
            part = dev
        elif line.strip() and not line.startswith("#"):
            part.append(line.strip())
    return runtime, dev


def _name(requirement: str) -> str:
    for sep in "=<>!~[; ":
        requirement = requirement.split(sep)[0]
    return requirement.lower().replace("_", "-")


def test_pyproject_declares_what_requirements_in_declares():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, dev = _requirements_in()
    assert project["dependencies"] == runtime
    assert project["optional-dependencies"]["dev"] == dev


def test_every_third_party_import_is_a_declared_dependency():
    declared = {_name(r) for r in _requirements_in()[0]}
    undeclared = set()
    for path in [*ROOT.glob("pipeline/**/*.py"), *ROOT.glob("recsys/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in OWN or top == "__future__":
                    continue
                if _name(DISTRIBUTION.get(top, top)) not in declared:
                    undeclared.add(f"{path.relative_to(ROOT)}: {name}")
    assert not undeclared, sorted(undeclared)


@pytest.mark.slow
def test_pip_install_into_a_fresh_virtualenv_gives_a_working_trendrec(tmp_path):
    uv = Path(sys.executable).parent / "uv"
    if not uv.is_file():
        pytest.skip(f"{uv} not found: `make install` puts uv in the project's .venv")
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    subprocess.run([str(uv), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, env=env)
    python = venv / "bin" / "python"
    # `pip install .`, resolved against the lock so the versions are the tested ones
    subprocess.run([str(uv), "pip", "install", "--quiet", "--python", str(python), "-c",
                    str(ROOT / "requirements.txt"), str(ROOT)], check=True, env=env, cwd=tmp_path)
    run = {"capture_output": True, "text": True, "env": env, "cwd": tmp_path}  # outside the source tree
    help_out = subprocess.run([str(venv / "bin" / "trendrec"), "--help"], **run)
    assert help_out.returncode == 0, help_out.stderr
    assert all(c in help_out.stdout for c in ("ingest", "aggregate", "train", "push", "rerank", "serve"))
    version = subprocess.run([str(venv / "bin" / "trendrec"), "--version"], **run)
    assert version.returncode == 0 and version.stdout.strip() == "trendrec 0.1.0", version
    modules = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                     for p in [*ROOT.glob("pipeline/**/*.py"), *ROOT.glob("recsys/**/*.py")])
    code = ("import importlib, sys\n"
            f"for m in {modules!r}:\n    importlib.import_module(m)\n"
            "import recsys\nprint(recsys.__file__)")
    imported = subprocess.run([str(python), "-c", code], **run)
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert str(venv) in imported.stdout  # the installed copy, not the source tree


def test_the_documented_commands_have_their_packages_in_the_lock():
    """`jupyter lab notebooks/` (notebooks/README.md) and the offline /docs assets install from the lock."""
    locked = {_name(line) for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line and not line.startswith((" ", "#"))}
    assert {"jupyterlab", "fastapi-offline"} <= locked
    assert "jupyterlab==" in "\n".join(_requirements_in()[1])  # a dev tool, not a runtime dependency
