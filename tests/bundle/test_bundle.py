"""Offline checks of the Databricks Asset Bundle, and that deliberate mistakes are caught."""

import shutil

import pytest
import yaml

from customer_segmentation.core.settings import PARAMS_BY_NAME, TASKS
from customer_segmentation.ops.bundle_check import check_bundle, notebook_task
from testkit import REPO

JOB_FILE = "customer_segmentation.job.yml"


@pytest.mark.parametrize("target", ["dev", "prod"])
def test_the_bundle_is_valid(target):
    assert [str(p) for p in check_bundle(REPO, target)] == []


def test_job_shape():
    job = yaml.safe_load((REPO / "resources" / JOB_FILE).read_text())["resources"]["jobs"]["customer_segmentation"]
    tasks = {t["task_key"]: t for t in job["tasks"]}
    assert list(tasks) == ["bronze", "silver", "gold_features", "train", "lifetime_value", "publish"]
    depends_on = {key: [d["task_key"] for d in task.get("depends_on", [])] for key, task in tasks.items()}
    # lifetime_value runs beside train; publish needs both.
    assert depends_on == {"bronze": [], "silver": ["bronze"], "gold_features": ["silver"], "train": ["gold_features"],
                          "lifetime_value": ["gold_features"], "publish": ["train", "lifetime_value"]}
    assert job["max_concurrent_runs"] == 1 and job["email_notifications"]["on_failure"]
    assert job["schedule"]["pause_status"] == "${var.schedule_pause_status}"
    assert all(t["libraries"] == [{"whl": "../dist/*.whl"}] and t["timeout_seconds"] for t in tasks.values())
    assert all(p["name"] in PARAMS_BY_NAME for p in job["parameters"])


def test_targets():
    bundle = yaml.safe_load((REPO / "databricks.yml").read_text())
    dev, prod = bundle["targets"]["dev"], bundle["targets"]["prod"]
    assert dev["mode"] == "development" and dev["default"] is True
    assert "${workspace.current_user.short_name}" in dev["variables"]["schema_prefix"]
    assert prod["mode"] == "production" and prod["workspace"]["root_path"] and prod["permissions"]
    assert prod["variables"]["schedule_pause_status"] == "UNPAUSED"
    assert bundle["variables"]["schedule_pause_status"]["default"] == "PAUSED"


def test_analysts_may_read_gold_only():
    catalog = yaml.safe_load((REPO / "resources" / "customer_segmentation.catalog.yml").read_text())["resources"]
    schemas = catalog["schemas"]
    assert schemas["gold"]["grants"] == [{"principal": "${var.analysts_group}", "privileges": ["USE_SCHEMA", "SELECT"]}]
    assert "grants" not in schemas["bronze"] and "grants" not in schemas["silver"]
    assert all("analysts" not in str(volume) for volume in catalog["volumes"].values())


def test_notebooks_are_databricks_source_files_in_job_order():
    notebooks = sorted((REPO / "notebooks").glob("0*.py"))
    assert [p.name for p in notebooks] == [f"{i:02d}_{task}.py" for i, task in enumerate(TASKS, 1)]
    for path in notebooks + sorted((REPO / "notebooks").glob("*.py")):
        text = path.read_text()
        assert text.startswith("# Databricks notebook source\n"), path.name
        assert "# COMMAND ----------" in text and "# MAGIC %md" in text, path.name
    assert [notebook_task(p) for p in notebooks] == list(TASKS)


@pytest.fixture
def bundle_copy(tmp_path):
    for item in ("databricks.yml", "requirements.txt"):
        shutil.copy(REPO / item, tmp_path / item)
    for folder in ("resources", "notebooks"):
        shutil.copytree(REPO / folder, tmp_path / folder)

    def edit(relative: str, old: str, new: str):
        path = tmp_path / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))
        return tmp_path

    return edit


@pytest.mark.parametrize("relative, old, new, file, key, message", [
    ("resources/" + JOB_FILE, "notebook_task:\n            notebook_path: ../notebooks/02_silver.py",
     "notebok_task:\n            notebook_path: ../notebooks/02_silver.py", JOB_FILE,
     "resources.jobs.customer_segmentation", "notebok_task"),
    ("resources/" + JOB_FILE, "- task_key: silver\n          job_cluster_key",
     "- task_key: silverr\n          job_cluster_key", JOB_FILE, "tasks[gold_features].depends_on",
     "unknown task 'silverr'"),
    ("resources/" + JOB_FILE, "../notebooks/04_train.py", "../notebooks/04_training.py",
     JOB_FILE, "tasks[train].notebook_task.notebook_path", "does not exist"),
    ("notebooks/06_publish.py", 'task_settings(dbutils, "publish")', 'task_settings(dbutils, "train")',
     JOB_FILE, "tasks[publish].notebook_task.notebook_path", "builds the settings of task 'train', not of 'publish'"),
    # publish reads the currency (its figures and report): a job without it would publish in the default one.
    ("resources/" + JOB_FILE, "        - name: currency\n          default: GBP\n", "",
     JOB_FILE, "resources.jobs.customer_segmentation.parameters", "task 'train' reads 'currency', which is not a job"),
    ("resources/" + JOB_FILE, "        - name: run_id\n",
     "        - name: unused_knob\n          default: x\n        - name: run_id\n", JOB_FILE, "parameters[unused_knob]",
     "read by no task"),
    ("resources/" + JOB_FILE, "        - name: kmeans_starts\n          default: \"5\"",
     "        - name: kmeans_starts\n          default: \"6\"", JOB_FILE, "parameters[kmeans_starts].default",
     "'6' differs from the parameter registry's '5'"),
    ("databricks.yml", "default: PAUSED", "default: SOMETIMES", JOB_FILE, "resources.jobs.customer_segmentation",
     "'SOMETIMES' is not a valid PauseStatus"),
    ("databricks.yml", "default: 17.3.x-cpu-ml-scala2.13", "default: 16.4.x-cpu-ml-scala2.12", JOB_FILE,
     "new_cluster.spark_version", "ships pyspark 3.5.x but requirements.txt pins 4.0.1"),
    ("databricks.yml", "default: 17.3.x-cpu-ml-scala2.13", "default: 17.3.x-scala2.13", JOB_FILE,
     "new_cluster.spark_version", "not a Databricks Runtime ML version"),
    ("resources/" + JOB_FILE, "- task_key: bronze\n          description", "- task_key: bronze\n          depends_on:\n"
     "            - task_key: publish\n          description", JOB_FILE, "tasks", "cycle"),
    ("resources/customer_segmentation.catalog.yml", "volume_type: MANAGED", "volume_type: MANAGEDD",
     "customer_segmentation.catalog.yml", "resources.volumes.landing", "MANAGEDD"),
    ("databricks.yml", "include:", "includes: []\ninclude:", "databricks.yml", "includes", "unknown top-level key"),
    ("resources/customer_segmentation.mlflow.yml", "${var.experiment_path}", "${var.experiment_pth}",
     "customer_segmentation.mlflow.yml", "resources.experiments.customer_segmentation", "unknown variable"),
])
def test_a_deliberate_mistake_is_reported_with_its_file_and_key(bundle_copy, relative, old, new, file, key, message):
    root = bundle_copy(relative, old, new)
    problems = check_bundle(root, "dev")
    matching = [p for p in problems if p.file == file and key in p.key and message in p.message]
    assert matching, "\n".join(map(str, problems)) or "no problem reported"
