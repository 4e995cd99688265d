"""The Databricks notebooks, run here as plain Python scripts against local Spark."""

import json
import runpy

import pytest

from customer_segmentation.core.settings import TASKS
from customer_segmentation.ops import notebook
from customer_segmentation.ops.jobs import run_task
from customer_segmentation.ops.notebook import LocalWidgets
from testkit import REPO

NOTEBOOKS = REPO / "notebooks"
TASK_NOTEBOOKS = sorted(NOTEBOOKS.glob("0*.py"))
# In job order: here each fixture's upstream tasks were run by the fixtures before it (see `SharedScratch`).
TEST_NOTEBOOKS = sorted((NOTEBOOKS / "tests").glob("test_*.py"), key=lambda p: TASKS.index(p.stem[len("test_"):]))


class SharedScratch:
    """Here the nutter fixtures share one scratch dataset: on Databricks nutter runs each apart, so
    each builds its own (`notebook.Scratch`), but in one process each would only run again what the
    fixtures before it ran. `run` skips a task whose tables are there; the schemas are dropped after
    the last fixture. Each fixture still runs and checks its own task."""

    shared = None
    scratch = notebook.Scratch  # the real one, before the tests put this class in its place

    def __init__(self, dbutils, name: str) -> None:
        if SharedScratch.shared is None:
            SharedScratch.shared = SharedScratch.scratch(dbutils, "shared")
        self.settings, self.lines = SharedScratch.shared.settings, SharedScratch.shared.lines

    def run(self, spark, *tasks: str) -> None:
        for task in tasks:
            if not all(spark.catalog.tableExists(name) for name in self.settings.tables.written_by(task)):
                run_task(spark, self.settings, task)

    def drop(self, spark) -> None:
        """Dropped once, by the `shared_scratch` fixture, after the last fixture."""


@pytest.fixture(scope="module")
def shared_scratch(spark):
    yield SharedScratch
    if SharedScratch.shared is not None:
        SharedScratch.shared.drop(spark)
        SharedScratch.shared = None


@pytest.fixture
def widgets(monkeypatch, session_state):
    """Widget values for the local stand-in, as environment variables."""
    monkeypatch.setenv("CUSTOMER_SEGMENTATION_STATE_ROOT", str(session_state))

    def set_values(**values):
        for name, value in values.items():
            monkeypatch.setenv(f"CUSTOMER_SEGMENTATION_{name.upper()}", str(value))

    return set_values


def test_task_notebooks_run_as_scripts_in_job_order(spark, widgets, synthetic_data, tmp_path, capsys):
    assert [p.stem for p in TASK_NOTEBOOKS] == [f"{i:02d}_{task}" for i, task in enumerate(TASKS, 1)]
    widgets(bronze_schema="nb_bronze", silver_schema="nb_silver", gold_schema="nb_gold",
            landing_path=synthetic_data / "transactions", checkpoint_root=tmp_path / "checkpoints",
            experiment_name="nb_experiment", model_name="nb_model", clv_model_name="nb_clv_model", k_min=2, k_max=2,
            algorithms="kmeans,gaussian_mixture",
            kmeans_starts=1, run_id="notebook-test")
    for path in TASK_NOTEBOOKS:
        namespace = runpy.run_path(str(path), run_name="__main__")
        assert namespace["result"].name == path.stem[3:]
    out = capsys.readouterr().out
    for task in TASKS:
        assert f"[{task}] done" in out
    assert "segment_name" in out, "the publish notebook ends by displaying the segment profiles"
    segments = spark.table("spark_catalog.nb_gold.customer_segments")
    values = spark.table("spark_catalog.nb_gold.customer_lifetime_value")
    assert values.count() == segments.count() and values.where("p_alive IS NULL").count() == 0
    assert segments.count() == spark.table("spark_catalog.nb_gold.customer_features").count()
    manifest = json.loads((synthetic_data / "manifest.json").read_text())
    assert spark.table("spark_catalog.nb_bronze.transactions_raw").count() == manifest["lines"]
    # The analysts' notebook reads only gold tables.
    exploration = NOTEBOOKS / "exploration.py"
    assert "transactions_raw" not in exploration.read_text() and "tables.orders" not in exploration.read_text()
    runpy.run_path(str(exploration), run_name="__main__")
    assert "recommended_action" in capsys.readouterr().out


@pytest.mark.parametrize("path", TEST_NOTEBOOKS, ids=lambda p: p.stem)
def test_nutter_fixture_passes(spark, widgets, tmp_path_factory, shared_scratch, monkeypatch, path):
    widgets(scratch_path=tmp_path_factory.getbasetemp() / "nutter_scratch")
    monkeypatch.setattr(notebook, "Scratch", shared_scratch)
    namespace = runpy.run_path(str(path), run_name="__main__")
    results = namespace["result"].test_results
    assert results.results, f"{path.name} ran no test case"
    failures = [f"{r.test_name}: {r.exception!r}" for r in results.results if not r.passed]
    assert not failures, "\n".join(failures)


def test_local_widgets_read_environment_then_default(monkeypatch):
    widgets = LocalWidgets()
    widgets.text("k_max", "10")
    assert widgets.get("k_max") == "10"
    monkeypatch.setenv("CUSTOMER_SEGMENTATION_K_MAX", "6")
    assert widgets.get("k_max") == "6"
    with pytest.raises(ValueError, match="not declared"):
        widgets.get("k_min")
