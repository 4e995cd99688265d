"""Offline checks of the Databricks Asset Bundle (databricks.yml and resources/*.yml).

`databricks.bundles` (the bundle's own Python models) rejects unknown keys, missing fields and
bad enum values in each resource. On top, this checks what those models cannot see: task
dependencies, notebook files, the job's parameters against the parameter registry (every task's
parameters present, every default equal to the registry's, none that no task reads), and the
runtime against the local Spark and Delta pins. Every problem names the file and the key.
"""

from __future__ import annotations

import ast
import glob
import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..core.settings import PARAMS_BY_NAME, TASKS, task_parameters

NOTEBOOK_HEADER = "# Databricks notebook source"
TOP_LEVEL_KEYS = {"bundle", "include", "artifacts", "variables", "targets", "workspace", "resources",
                  "permissions", "run_as", "sync", "presets", "experimental", "scripts", "python"}
# Databricks Runtime ML LTS versions and the Apache Spark / Delta Lake minor versions they ship.
RUNTIME_VERSIONS = {"15.4": ("3.5", "3.2"), "16.4": ("3.5", "3.3"), "17.3": ("4.0", "4.0"), "18": ("4.1", "4.1")}
PLACEHOLDERS = {"workspace.current_user.short_name": "someone",
                "workspace.current_user.userName": "someone@example.com", "bundle.name": "customer_segmentation"}
_REFERENCE = re.compile(r"\$\{([^}]+)\}")


@dataclass(frozen=True)
class Problem:
    file: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}"


def _resource_models():
    from databricks.bundles.dashboards import Dashboard
    from databricks.bundles.experiments import MlflowExperiment
    from databricks.bundles.jobs import Job
    from databricks.bundles.registered_models import RegisteredModel
    from databricks.bundles.schemas import Schema
    from databricks.bundles.volumes import Volume

    return {"jobs": Job, "schemas": Schema, "volumes": Volume, "experiments": MlflowExperiment,
            "registered_models": RegisteredModel, "dashboards": Dashboard}


def _resolve(value, lookup):
    """Replace ${...} references (variables, resources, workspace placeholders), recursively."""
    if isinstance(value, dict):
        return {k: _resolve(v, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, lookup) for v in value]
    if not isinstance(value, str):
        return value
    for _ in range(10):  # references may point at values holding references
        if not _REFERENCE.search(value):
            break
        if _REFERENCE.fullmatch(value):
            found = lookup(_REFERENCE.fullmatch(value).group(1))
            if not isinstance(found, str):
                return found
        value = _REFERENCE.sub(lambda m: str(lookup(m.group(1))), value)
    return value


def _pinned(requirements: Path, package: str) -> str | None:
    for line in requirements.read_text().splitlines():
        if line.strip().lower().startswith(f"{package}=="):
            return line.split("==", 1)[1].strip()
    return None


def notebook_task(path: Path) -> str | None:
    """The task whose settings a notebook builds (`notebook.task_settings(dbutils, "<task>")`), if any."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "task_settings"
                and len(node.args) == 2 and isinstance(node.args[1], ast.Constant)):
            return node.args[1].value
    return None


class Bundle:
    def __init__(self, root: Path, target: str):
        self.root = root
        self.problems: list[Problem] = []
        self.main = self._load(root / "databricks.yml")
        self.resources: dict[str, dict[str, tuple[str, dict]]] = {}
        for pattern in self.main.get("include", []):
            for file in sorted(glob.glob(str(root / pattern))):
                document = self._load(Path(file)) or {}
                for kind, items in (document.get("resources") or {}).items():
                    for key, body in (items or {}).items():
                        self.resources.setdefault(kind, {})[key] = (Path(file).name, body)
        targets = self.main.get("targets") or {}
        if target not in targets:
            self._add("databricks.yml", "targets", f"target {target!r} is not defined")
        self.target = targets.get(target) or {}
        self.variables = {name: (spec or {}).get("default")
                          for name, spec in (self.main.get("variables") or {}).items()}
        self.variables.update(self.target.get("variables") or {})

    def _add(self, file: str, key: str, message: str) -> None:
        self.problems.append(Problem(file, key, message))

    def _load(self, path: Path) -> dict:
        try:
            return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as error:
            self._add(path.name, "(file)", f"cannot be read as YAML: {str(error).splitlines()[0]}")
            return {}

    def lookup(self, reference: str):
        if reference.startswith("var."):
            name = reference[4:]
            if name not in self.variables:
                raise KeyError(f"unknown variable {name!r}")
            return self.variables[name]
        if reference.startswith("resources."):
            _, kind, key, *path = reference.split(".")
            value = self.resources[kind][key][1]
            for part in path:
                value = value[part]
            return value
        return PLACEHOLDERS.get(reference, f"<{reference}>")

    def resolved(self, body):
        return _resolve(body, self.lookup)


def check_bundle(root: str | Path, target: str = "dev") -> list[Problem]:
    root = Path(root)
    bundle = Bundle(root, target)
    for key in sorted(set(bundle.main) - TOP_LEVEL_KEYS):
        bundle._add("databricks.yml", key, "unknown top-level key")
    models = _resource_models()
    for kind, items in bundle.resources.items():
        for key, (file, body) in items.items():
            where = f"resources.{kind}.{key}"
            try:
                resolved = bundle.resolved(body)
            except KeyError as error:
                bundle._add(file, where, str(error).strip("'\""))
                continue
            if kind not in models:
                bundle._add(file, f"resources.{kind}", "resource type is not checked offline")
                continue
            try:
                models[kind].from_dict(resolved)
            except (ValueError, TypeError) as error:
                bundle._add(file, where, str(error))
            if kind == "jobs":
                _check_job(bundle, file, where, body, resolved)
            if kind == "dashboards":
                _check_dashboard(bundle, file, where, resolved)
    return bundle.problems


def _check_dashboard(bundle: Bundle, file: str, where: str, dashboard: dict) -> None:
    """The dashboard file exists and parses; every widget reads a dataset the file defines."""
    path = (bundle.root / "resources" / str(dashboard.get("file_path"))).resolve()
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        bundle._add(file, f"{where}.file_path", f"{dashboard.get('file_path')} cannot be read as JSON: {error}")
        return
    datasets = {d.get("name") for d in content.get("datasets") or []}
    for page in content.get("pages") or []:
        for item in page.get("layout") or []:
            widget = item.get("widget") or {}
            for query in widget.get("queries") or []:
                name = (query.get("query") or {}).get("datasetName")
                if name not in datasets:
                    bundle._add(file, f"{where}.file_path", f"widget {widget.get('name')!r} on page "
                                                            f"{page.get('name')!r} reads unknown dataset {name!r}")
    if dashboard.get("embed_credentials") is not False:
        bundle._add(file, f"{where}.embed_credentials", "must be false: viewers query with their own credentials")


def _check_job(bundle: Bundle, file: str, where: str, raw: dict, job: dict) -> None:
    tasks = job.get("tasks") or []
    keys = [t.get("task_key") for t in tasks]
    for task in tasks:
        for dependency in task.get("depends_on") or []:
            if dependency.get("task_key") not in keys:
                bundle._add(file, f"{where}.tasks[{task.get('task_key')}].depends_on",
                            f"unknown task {dependency.get('task_key')!r}; tasks: {', '.join(map(str, keys))}")
    if _has_cycle({t.get("task_key"): [d.get("task_key") for d in t.get("depends_on") or []] for t in tasks}):
        bundle._add(file, f"{where}.tasks", "depends_on forms a cycle")
    parameters = {p.get("name"): p.get("default") for p in raw.get("parameters") or []}
    read_by_tasks: set[str] = set()
    for task in tasks:
        notebook = (task.get("notebook_task") or {}).get("notebook_path")
        if notebook is None:
            continue
        key = f"{where}.tasks[{task.get('task_key')}].notebook_task.notebook_path"
        if (task.get("notebook_task") or {}).get("base_parameters"):
            bundle._add(file, key.replace("notebook_path", "base_parameters"),
                        "use job-level parameters, not per-task base_parameters")
        path = (bundle.root / "resources" / notebook).resolve()
        if not path.is_file():
            bundle._add(file, key, f"notebook {notebook} does not exist")
            continue
        if not path.read_text(encoding="utf-8").startswith(NOTEBOOK_HEADER):
            bundle._add(file, key, f"{notebook} does not start with '{NOTEBOOK_HEADER}'")
        named = notebook_task(path)
        if named != task.get("task_key"):
            bundle._add(file, key, f"{path.name} builds the settings of task {named!r}, not of "
                                   f"{task.get('task_key')!r} (notebook.task_settings(dbutils, <task>))")
        if named not in TASKS:
            continue
        read_by_tasks.update(task_parameters(named))
        for name in task_parameters(named):
            if name not in parameters:
                bundle._add(file, f"{where}.parameters", f"task {named!r} reads {name!r}, which is not a job parameter "
                                                         f"(its notebook would use the default)")
    for name, default in parameters.items():
        if name not in read_by_tasks:
            bundle._add(file, f"{where}.parameters[{name}]", "job parameter is read by no task")
            continue
        param = PARAMS_BY_NAME[name]
        expected = param.job_default if param.job_default is not None else param.default
        if str(default) != expected:
            bundle._add(file, f"{where}.parameters[{name}].default",
                        f"{default!r} differs from the parameter registry's {expected!r} (core/settings.py)")
    for cluster in job.get("job_clusters") or []:
        spec = cluster.get("new_cluster") or {}
        _check_runtime(bundle, file, f"{where}.job_clusters[{cluster.get('job_cluster_key')}].new_cluster", spec)


def _check_runtime(bundle: Bundle, file: str, key: str, cluster: dict) -> None:
    version = str(cluster.get("spark_version", ""))
    if "-ml-" not in version:
        bundle._add(file, f"{key}.spark_version", f"{version!r} is not a Databricks Runtime ML version")
    if cluster.get("data_security_mode") not in ("SINGLE_USER", "DATA_SECURITY_MODE_DEDICATED"):
        bundle._add(file, f"{key}.data_security_mode", "MLlib and mlflow.spark need dedicated (single-user) access")
    runtime = next((r for r in RUNTIME_VERSIONS if version.startswith(r + ".")), None)
    requirements = bundle.root / "requirements.txt"
    if runtime is None:
        bundle._add(file, f"{key}.spark_version", f"{version!r} is not a known LTS runtime "
                                                  f"({', '.join(RUNTIME_VERSIONS)})")
        return
    spark, delta = RUNTIME_VERSIONS[runtime]
    for package, expected in (("pyspark", spark), ("delta-spark", delta)):
        pinned = _pinned(requirements, package) if requirements.is_file() else None
        if pinned is None or not pinned.startswith(expected + "."):
            bundle._add(file, f"{key}.spark_version", f"runtime {runtime} ships {package} {expected}.x but "
                                                      f"requirements.txt pins {pinned}")


def _has_cycle(graph: dict[str, list[str]]) -> bool:
    state: dict[str, int] = {}

    def visit(node: str) -> bool:
        if state.get(node) == 1:
            return True
        if state.get(node) == 2 or node not in graph:
            return False
        state[node] = 1
        if any(visit(n) for n in graph[node]):
            return True
        state[node] = 2
        return False

    return any(visit(node) for node in graph)
