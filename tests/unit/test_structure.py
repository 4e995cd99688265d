"""The package's shape: folders are the layers of the flow, imports run one way, every table and
parameter is stated once and everything derived from them agrees."""

import ast
import re
from pathlib import Path

import pytest

from customer_segmentation.core.settings import PARAMS, TASKS, task_parameters
from customer_segmentation.core.tables import registry
from testkit import REPO

PACKAGE = REPO / "src" / "customer_segmentation"
# The flow, in order: a module may import its own layer or an earlier one, never a later one.
LAYERS = ("core", "ingest", "silver", "gold", "models", "publish", "report", "ops")


def _imports(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, imported module as a dotted path inside the package) of every import of `path`."""
    module = path.relative_to(root).with_suffix("").parts
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(module[:len(module) - node.level])
                target = base + (node.module.split(".") if node.module else [])
                found += [(node.lineno, ".".join(target + [alias.name])) for alias in node.names]
            elif node.module and node.module.startswith("customer_segmentation."):
                found.append((node.lineno, node.module.removeprefix("customer_segmentation.")))
    return found


def test_every_module_lives_in_a_layer():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert loose == [], "modules belong in a layer's folder"
    assert sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()) == sorted(LAYERS)


def backward_imports(root: Path) -> list[str]:
    wrong = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if len(parts) < 2:
            continue
        layer = LAYERS.index(parts[0])
        for line, target in _imports(path, root):
            target_layer = target.split(".")[0]
            if target_layer in LAYERS and LAYERS.index(target_layer) > layer:
                wrong.append(f"{path.relative_to(root)}:{line} imports {target}")
    return wrong


def test_imports_run_one_way_from_core_through_the_stages_to_ops():
    assert backward_imports(PACKAGE) == []


def test_a_backward_import_is_found(tmp_path):
    for layer in ("silver", "models"):
        (tmp_path / layer).mkdir()
    (tmp_path / "silver" / "orders.py").write_text("from ..models import naming\nfrom . import cleaning\n")
    (tmp_path / "models" / "task.py").write_text("from ..silver.orders import classify\n")
    assert backward_imports(tmp_path) == ["silver/orders.py:1 imports models.naming"]


def test_every_parameter_is_read_by_a_task_and_every_task_names_real_parameters():
    assert all(set(p.tasks) <= set(TASKS) for p in PARAMS)
    read = {name for task in TASKS for name in task_parameters(task)}
    assert read | {p.name for p in PARAMS if p.local} == {p.name for p in PARAMS}
    assert "currency" in task_parameters("publish"), "publish draws the report's figures in it"


def test_every_table_is_in_the_readme_and_every_listed_table_exists():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    tables = readme[readme.index("## The tables"):readme.index("## Which lines count")]
    listed = set(re.findall(r"`(?:bronze|silver|gold)\.([a-z_]+)`", tables)) | set(re.findall(r"`([a-z_]+)`", tables))
    missing = [name for name in registry() if name not in listed]
    optional = {name for name, t in registry().items() if t.needs}
    assert [name for name in missing if name not in optional] == []
    named = set(re.findall(r"`(?:bronze|silver|gold)\.([a-z_]+)`", tables))
    assert named and named <= set(registry()), named - set(registry())


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_says_what_it_is(layer):
    assert (PACKAGE / layer / "__init__.py").read_text(encoding="utf-8").startswith('"""')
