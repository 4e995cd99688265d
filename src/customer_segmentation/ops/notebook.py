"""What the Databricks notebooks need, and a local stand-in so each notebook also runs as a script.

On Databricks the notebook's own `dbutils`, `display` and `spark` are used. Elsewhere widgets
come from `LocalWidgets` (values from environment variables `CUSTOMER_SEGMENTATION_<NAME>`,
else the widget's default), `display` prints a small table, and Spark is the local session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable

from ..core.console import format_table, say
from ..core.settings import PARAMS_BY_NAME, Settings, on_databricks, task_parameters

ENV_PREFIX = "CUSTOMER_SEGMENTATION_"


class LocalWidgets:
    """The part of `dbutils.widgets` the notebooks use."""

    def __init__(self) -> None:
        self._defaults: dict[str, str] = {}

    def text(self, name: str, default_value: str = "", label: str | None = None) -> None:
        self._defaults[name] = default_value

    def get(self, name: str) -> str:
        if name not in self._defaults:
            raise ValueError(f"widget {name!r} was not declared")
        return os.environ.get(ENV_PREFIX + name.upper(), self._defaults[name])

    def removeAll(self) -> None:  # noqa: N802 - the dbutils name
        self._defaults.clear()


class LocalDbutils:
    def __init__(self) -> None:
        self.widgets = LocalWidgets()


def local_display(df, rows: int = 20) -> None:
    """Print a DataFrame (Spark or pandas) as a plain table."""
    frame = df.limit(rows).toPandas() if hasattr(df, "limit") and hasattr(df, "toPandas") else df.head(rows)
    say(format_table([str(c) for c in frame.columns], frame.astype(object).values.tolist()))


def runtime(namespace: dict) -> tuple[object, Callable]:
    """(dbutils, display) from the notebook's globals on Databricks, local stand-ins elsewhere."""
    dbutils = namespace.get("dbutils") or LocalDbutils()
    display = namespace.get("display") or local_display
    return dbutils, display


def task_settings(dbutils, task: str) -> Settings:
    """The settings of job task `task`: a widget for every parameter the registry lists for it."""
    return settings_from_widgets(dbutils, task_parameters(task))


def settings_from_widgets(dbutils, names: Iterable[str]) -> Settings:
    """Declare a text widget per setting (default from the parameter table) and build the settings."""
    values = {}
    if not on_databricks():  # local runs: the state folder is not a job parameter
        values["state_root"] = local_state_root()
    for name in names:
        param = PARAMS_BY_NAME[name]
        dbutils.widgets.text(name, param.default, name)
        values[name] = dbutils.widgets.get(name)
    return Settings.from_params(values)


def is_databricks() -> bool:
    return on_databricks()


def local_state_root() -> str:
    """Local runs keep their state here (CUSTOMER_SEGMENTATION_STATE_ROOT, default .local)."""
    return os.environ.get(ENV_PREFIX + "STATE_ROOT") or Settings().state_root


class Scratch:
    """A small generated dataset with schemas of its own, for the notebook tests (nutter).

    Widgets: `catalog` and `scratch_path` (a volume path on Databricks; a temporary folder locally).
    """

    def __init__(self, dbutils, name: str, customers: int = 40) -> None:
        from .generate import generate

        dbutils.widgets.text("catalog", PARAMS_BY_NAME["catalog"].default, "catalog")
        dbutils.widgets.text("scratch_path", tempfile.gettempdir(), "scratch_path")
        catalog = dbutils.widgets.get("catalog")
        prefix = f"test_{name}_{uuid.uuid4().hex[:8]}"
        self.root = f"{dbutils.widgets.get('scratch_path').rstrip('/')}/{prefix}"
        self.lines = generate(self.root, customers=customers, seed=5)["lines"]
        gold = f"{prefix}_gold"
        self.settings = Settings(
            catalog=catalog, bronze_schema=f"{prefix}_bronze", silver_schema=f"{prefix}_silver", gold_schema=gold,
            landing_path=f"{self.root}/transactions", checkpoint_root=f"{self.root}/checkpoints",
            state_root=local_state_root(),
            experiment_name=f"/Shared/{prefix}" if on_databricks() else prefix,
            model_name=f"{catalog}.{gold}.segments" if on_databricks() else f"{prefix}_segments",
            clv_model_name=f"{catalog}.{gold}.lifetime_value" if on_databricks() else f"{prefix}_lifetime_value",
            # A small model search: these tests check the wiring of each task, not the segments.
            model_staging_path=f"{self.root}/models", k_min=2, k_max=3, algorithms=("kmeans",), kmeans_starts=1,
        )

    def run(self, spark, *tasks: str) -> dict:
        from .jobs import run_task

        return {task: run_task(spark, self.settings, task) for task in tasks}

    def drop(self, spark) -> None:
        for schema in self.settings.schemas:
            spark.sql(f"DROP SCHEMA IF EXISTS `{self.settings.catalog}`.`{schema}` CASCADE")
        shutil.rmtree(self.root, ignore_errors=True)
