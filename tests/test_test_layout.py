"""Tests mirror the package tree, and tests and benchmarks import nothing from each other.

Read with ``ast`` (every import anywhere in a file, function-local ones included):
benchmarks/ never imports ``tests``; a test module imports no other test module but a conftest (the
shared fixtures and helpers) and no benchmark script; every package folder under pipeline/ and recsys/
has a folder of the same path under tests/ (pipeline/ingest -> tests/ingest), unless EXCEPTIONS names
it with the reason. A test that needs a benchmark's code runs the script as a program instead
(tests/ingest/test_stage_kill.py, test_ingest_fuzz.py).

    .venv/bin/python -m pytest tests/test_test_layout.py -q
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

# package folder -> why it has no mirror folder under tests/
EXCEPTIONS = {
    "recsys/forecast/nn": "the network's parts are tested beside the forecaster in tests/forecast "
                          "(test_cells, test_windows, test_quantiles, test_seasonal_base)",
    "recsys/cli": "the one program is tested in tests/core (test_cli, test_cli_arguments, test_cli_contract, "
                  "test_cli_failures, test_cli_faults, test_cli_paths, test_cli_summary)",
}


def imported(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import in ``path``; relative imports resolved against ``package``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found += [(node.lineno, base)] + [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return found


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_no_benchmark_imports_tests():
    bad = [f"{p.relative_to(ROOT)}:{line} imports {mod}" for p in sorted((ROOT / "benchmarks").rglob("*.py"))
           for line, mod in imported(p, "") if mod == "tests" or mod.startswith("tests.")]
    assert not bad, "benchmarks must not import test code; move what both need (see this module):\n" + "\n".join(bad)


def test_test_modules_import_only_conftest_and_no_benchmark():
    benchmarks = {p.stem for p in (ROOT / "benchmarks").glob("*.py")}
    bad = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        package = _module(path.parent)
        for line, mod in imported(path, package):
            test_code = (mod.startswith("tests.") and mod.split(".")[-1] not in {"conftest", "__init__"}
                         and not _is_conftest_member(mod))
            if test_code or mod.split(".")[0] in benchmarks | {"benchmarks"}:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    assert not bad, "test modules share code only through conftest.py:\n" + "\n".join(bad)


def _is_conftest_member(module: str) -> bool:
    """``tests.x.conftest.name`` (a from-import of one name of a conftest), or a package of tests."""
    parts = module.split(".")
    return "conftest" in parts[:-1] or (ROOT.joinpath(*parts) / "__init__.py").is_file()


def test_every_package_folder_has_a_mirror_under_tests():
    packages = [p.parent for top in ("pipeline", "recsys") for p in sorted((ROOT / top).rglob("__init__.py"))
                if p.parent != ROOT / top and any(m.name != "__init__.py" for m in p.parent.glob("*.py"))]
    missing = []
    for folder in packages:
        rel = folder.relative_to(ROOT).as_posix()
        mirror = ROOT / "tests" / Path(*folder.relative_to(ROOT).parts[1:])
        if rel not in EXCEPTIONS and not any(mirror.glob("test_*.py")):
            missing.append(f"{rel} -> {mirror.relative_to(ROOT)}/test_*.py")
    assert not missing, "add the tests (or an EXCEPTIONS entry with the reason):\n" + "\n".join(missing)
    assert set(EXCEPTIONS) <= {f.relative_to(ROOT).as_posix() for f in packages}, "stale EXCEPTIONS entry"
