"""The job: its tasks in order, each a function of (spark, settings), the same locally and on Databricks."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from types import ModuleType

from pyspark.sql import SparkSession

from ..core.console import say
from ..core.delta import row_count, row_counts, table_exists
from ..core.errors import UserError
from ..core.settings import TASKS, Settings, is_cloud_uri, on_databricks
from ..core.spark import interpreted_expressions

# Each task is the `run(spark, settings)` of its stage's task module. Named rather than imported:
# the modules bring in MLlib, pandas and matplotlib, which `python -m customer_segmentation run`
# imports while the JVM starts.
TASK_MODULES = {"bronze": "ingest.task", "silver": "silver.task", "gold_features": "gold.task",
                "train": "models.task", "lifetime_value": "models.lifetime_value", "publish": "publish.task"}
JOB_ORDER = TASKS
# The table each task starts from: a task run before the one that writes it gets a clear error.
TASK_INPUT = {"silver": "transactions_raw", "gold_features": "orders", "train": "customer_features",
              "lifetime_value": "customer_features", "publish": "clustering_metrics"}

# A local task over landing files smaller than this interprets its expressions instead of compiling
# them (BENCHMARKS.md): the tasks that read every line gain only on tiny sources (bronze was slower
# interpreted at 6.4 MB), those that read aggregates or customers still on the real data (47 MB).
INTERPRETED_BELOW_BYTES = {"bronze": 4 << 20, "silver": 4 << 20, "gold_features": 64 << 20, "train": 64 << 20,
                           "lifetime_value": 64 << 20, "publish": 64 << 20}


@dataclass(frozen=True)
class TaskResult:
    name: str
    seconds: float
    rows_written: dict[str, int]


def run_task(spark: SparkSession, settings: Settings, name: str, interpret_small_sources: bool = True) -> TaskResult:
    settings = with_run_id(settings)
    say(f"[{name}] started")
    check_input(spark, settings, name)
    started = time.perf_counter()
    with interpreted_expressions(spark, interpret_small_sources and interprets(settings, name)):
        rows_written = task_module(name).run(spark, settings.reading_as(name))
    seconds = time.perf_counter() - started
    written = ", ".join(f"{table} +{rows:,}" for table, rows in rows_written.items()) or "nothing written"
    say(f"[{name}] done in {seconds:.1f} s ({written})")
    return TaskResult(name, seconds, rows_written)


def interprets(settings: Settings, name: str) -> bool:
    """Whether task `name` interprets its expressions: only locally, and only over a small source.
    (On Databricks the cluster's engine decides.)"""
    return not on_databricks() and landing_bytes(settings.landing_path) < INTERPRETED_BELOW_BYTES[name]


def landing_bytes(path: str) -> float:
    """The size of the files in a local landing folder, sub-folders included; infinite for a URI."""
    folder = Path(path)
    if is_cloud_uri(path) or not folder.is_dir():
        return float("inf")
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def check_input(spark: SparkSession, settings: Settings, name: str) -> None:
    if name not in TASK_INPUT:
        return
    from ..core.tables import table

    needed = getattr(settings.tables, TASK_INPUT[name])
    if not table_exists(spark, needed):
        raise UserError(f"task {name} reads {needed}, which does not exist: run task "
                        f"{table(TASK_INPUT[name]).written_by} (or the whole job) first")


def task_module(name: str) -> ModuleType:
    """The module whose `run` is task `name`, imported."""
    return import_module(f"..{TASK_MODULES[name]}", __package__)


def with_run_id(settings: Settings) -> Settings:
    return settings if settings.run_id else settings.replace(run_id=uuid.uuid4().hex)


def run_job(spark: SparkSession, settings: Settings, tasks: tuple[str, ...] = JOB_ORDER,
            interpret_small_sources: bool = True) -> list[TaskResult]:
    settings = with_run_id(settings)
    if "gold_features" in tasks:
        check_as_of_date_before_any_write(spark, settings)
    return [run_task(spark, settings, name, interpret_small_sources) for name in tasks]


def check_as_of_date_before_any_write(spark: SparkSession, settings: Settings) -> None:
    """A reference date before all data is refused before bronze or silver change anything."""
    if settings.as_of_date is None:
        return
    from ..gold.features import check_as_of_date

    if table_exists(spark, settings.tables.orders) and row_count(spark, settings.tables.orders):
        check_as_of_date(spark.table(settings.tables.orders), settings.as_of_date)
        return
    from ..ingest.task import check_landing_folder
    from ..silver.orders import preview_orders

    check_landing_folder(settings.landing_path)
    check_as_of_date(preview_orders(spark, settings), settings.as_of_date)


def table_summary(spark: SparkSession, settings: Settings) -> list[tuple[str, int]]:
    """Every table of the job that exists, with its row count."""
    return list(row_counts(spark, settings.tables.all()).items())


def reset_local_state_if_source_changed(spark: SparkSession, settings: Settings) -> bool:
    """Local only: the tables of a state folder belong to one landing folder.

    When `make run SOURCE=...` points at a different folder than the one the local state was
    built from, the derived tables and checkpoints are rebuilt from scratch (landing files are
    never touched), so the tables always describe exactly the folder asked for.
    """
    if on_databricks():
        return False
    marker = Path(settings.state_root) / "landing.json"
    landing = str(Path(settings.landing_path).resolve())
    key = f"{settings.catalog}.{settings.bronze_schema}"
    built_from = json.loads(marker.read_text()) if marker.is_file() else {}
    previous = built_from.get(key)
    changed = previous is not None and previous != landing
    if changed:
        say(f"note: local state was built from {previous}; rebuilding it from {landing}")
        for schema in dict.fromkeys(settings.schemas):
            spark.sql(f"DROP SCHEMA IF EXISTS `{settings.catalog}`.`{schema}` CASCADE")
        shutil.rmtree(settings.checkpoints, ignore_errors=True)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({**built_from, key: landing}, indent=1) + "\n")
    return changed
