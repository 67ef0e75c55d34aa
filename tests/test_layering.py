"""Imports point one way: dags → recsys → pipeline, and inside them stage by stage in flow order.

Every ``import`` in pipeline/ and recsys/ is read with ``ast``, function-local and ``TYPE_CHECKING``
ones included (a lazy import that goes backwards is still a cycle waiting to happen). A module may
import its own layer and the layers before it. The registry and the training runs are a layer of
their own below the model families and must not import model code or TensorFlow/Keras. The three
model families share one layer and no family imports another's package; re-ranking and serving never
import a model or TensorFlow. docs/ARCHITECTURE.md states the rule.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

from tests.conftest import ROOT

# Layers in flow order; a module belongs to the longest prefix that matches it.
LAYERS: dict[str, int] = {
    "pipeline.config": 0, "pipeline.config_checks": 0, "pipeline.schemas": 0, "pipeline.errors": 0,
    "pipeline.store": 0, "pipeline.tables": 0, "pipeline.snapshots": 0, "pipeline.orchestration": 0,
    "pipeline.eventdb": 0, "pipeline.lists": 0, "pipeline.sampling": 0, "pipeline.distribute": 0,
    "pipeline.ingest": 1,
    "pipeline.aggregate": 2,
    "recsys.registry": 3, "recsys.runs": 3,
    "recsys.evaluation": 4, "recsys.evaluation.tensorboard": 4,
    "recsys.forecast": 5, "recsys.nextbasket": 5, "recsys.value": 5,
    "recsys.release": 6,
    "recsys.rank": 7, "recsys.monitor": 7,
    "recsys.rank.blend": 4,  # pure arithmetic: the protocols and the release score lists with the one blend rule
    "recsys.offline": 8,
    "recsys.serve": 9,
    "recsys.report": 10,
    "recsys.flow": 11,
    "recsys.cli": 12,
}
FAMILIES = ("recsys.forecast", "recsys.nextbasket", "recsys.value")
MODELS = (*FAMILIES, "keras", "tensorflow")
NO_MODEL_CODE = {"recsys.registry": MODELS, "recsys.runs": MODELS, "recsys.evaluation": MODELS,
                 # TensorBoard summaries are written with TensorFlow's summary API, never with a model
                 "recsys.evaluation.tensorboard": (*FAMILIES, "keras"),
                 "recsys.rank": MODELS, "recsys.rank.blend": MODELS, "recsys.serve": MODELS,
                 # the monitor reads releases and scores the value forecast with recsys.value.metrics (numpy)
                 "recsys.monitor": ("recsys.forecast", "recsys.nextbasket", "keras", "tensorflow")}


def _layer(module: str) -> tuple[str, int] | None:
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return prefix, LAYERS[prefix]
    return None


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement anywhere in the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return found


def violations(root: Path) -> list[str]:
    """Every import that goes against the flow, as 'file:line module imports target (why)'."""
    out = []
    for path in sorted([*root.glob("pipeline/**/*.py"), *root.glob("recsys/**/*.py")]):
        module = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        mine = _layer(module)
        if module in ("pipeline", "recsys") and not _imports(path, module):
            continue  # the empty top-level package markers
        if mine is None:
            out.append(f"{path.relative_to(root)}: {module} is in no layer: add it to LAYERS and ARCHITECTURE.md")
            continue
        for line, target in _imports(path, module):
            where = f"{path.relative_to(root)}:{line} {module} imports {target}"
            theirs = _layer(target)
            if theirs is not None and theirs[1] > mine[1]:
                out.append(f"{where} (a later stage: {theirs[0]} comes after {mine[0]})")
            for banned in NO_MODEL_CODE.get(mine[0], ()):
                if target == banned or target.startswith(banned + "."):
                    out.append(f"{where} ({mine[0]} imports no model code)")
            if mine[0] in FAMILIES and theirs is not None and theirs[0] in FAMILIES and theirs[0] != mine[0]:
                out.append(f"{where} (no model family imports another)")
    return out


def test_imports_follow_the_flow():
    assert violations(ROOT) == []


def test_pipeline_imports_nothing_from_recsys():
    assert all(_layer(m)[0].startswith("pipeline") for m in LAYERS if LAYERS[m] <= 2)
    for path in ROOT.glob("pipeline/**/*.py"):
        assert "recsys" not in {t.split(".")[0] for _, t in _imports(path, "pipeline.x")}, path


def test_no_module_of_recsys_outside_a_stage_folder():
    loose = {p.name for p in (ROOT / "recsys").glob("*.py")}
    assert loose == {"__init__.py", "runs.py", "release.py", "flow.py"}


def test_a_forbidden_import_is_caught(tmp_path):
    """The checker fails on a backwards import, also when it hides inside a function."""
    for package in ("pipeline", "recsys"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "pipeline" / "store.py", "a") as fh:
        fh.write("\nfrom recsys import flow  # noqa\n")
    with open(tmp_path / "recsys" / "registry" / "__init__.py", "a") as fh:
        fh.write("\n\ndef _sneaky():\n    from recsys.forecast.forecaster import SegmentForecaster  # noqa\n")
    with open(tmp_path / "recsys" / "forecast" / "train.py", "a") as fh:
        fh.write("\nfrom ..rank import rerank  # noqa\n")
    with open(tmp_path / "recsys" / "value" / "data.py", "a") as fh:
        fh.write("\nfrom recsys.nextbasket.histories import open_store  # noqa\n")
    with open(tmp_path / "recsys" / "rank" / "blend.py", "a") as fh:
        fh.write("\nimport tensorflow  # noqa\n")
    found = violations(tmp_path)
    assert any("pipeline.store imports recsys.flow" in v and "a later stage" in v for v in found), found
    assert any("recsys.registry imports recsys.forecast.forecaster" in v and "no model code" in v
               for v in found), found
    assert any("recsys.forecast.train imports recsys.rank.rerank" in v for v in found), found
    assert any("recsys.value.data imports recsys.nextbasket" in v and "no model family imports another" in v
               for v in found), found
    assert any("recsys.rank.blend imports tensorflow" in v for v in found), found
    assert len(found) == 6, found  # registry -> forecast counts twice: a later stage, and model code
