"""Landing data in batches gives the same tables as one run over all files; reruns change nothing."""

from pathlib import Path

import mlflow
import pytest

from customer_segmentation.models import tracking
from customer_segmentation.ops.jobs import JOB_ORDER, run_job, run_task
from customer_segmentation.report import page as report
from testkit import copy_files, quality_totals, report_section, snapshot

pytestmark = pytest.mark.faults


def _tables(settings):
    return snapshot(settings, [str(Path(settings.landing_path).resolve())])


@pytest.fixture(scope="module")
def two_ways(spark, small_landing, small_settings, small_reference):
    batched = small_settings("inc_batched")
    files, n = sorted(small_landing), len(small_landing)
    for chunk in (files[:n // 3], files[n // 3:2 * n // 3], files[2 * n // 3:]):
        copy_files(chunk, Path(batched.landing_path))
        run_job(spark, batched)
    return batched, small_reference


def test_batches_give_the_same_tables_as_one_run(spark, two_ways):
    batched, full = two_ways
    left, right = _tables(batched), _tables(full)
    assert set(left) == set(right)
    for table in left:
        assert left[table] == right[table], table
    assert (quality_totals(spark.table(batched.tables.quality_log))
            == quality_totals(spark.table(full.tables.quality_log)))
    history = spark.table(batched.tables.segment_history)
    assert history.select("as_of_date").distinct().count() == 3, "one snapshot per as_of_date"


def test_migration_compares_the_latest_snapshot_with_the_one_before(spark, two_ways):
    # Three batches, three snapshots: the view must pair the last two, not the first and the last.
    batched, full = two_ways
    history = spark.table(batched.tables.segment_history).toPandas()
    _, previous, latest = sorted(history["as_of_date"].unique())
    segment = {day: history[history["as_of_date"] == day].set_index("customer_id")["segment_name"]
               for day in (previous, latest)}
    moves = (segment[previous].rename("from_segment").to_frame()
             .join(segment[latest].rename("to_segment"), how="outer")
             .fillna({"from_segment": "(new customer)", "to_segment": "(not scored)"})
             .value_counts().to_dict())
    migration = spark.table(batched.tables.segment_migration).toPandas()
    assert set(migration["from_date"]) == {previous} and set(migration["to_date"]) == {latest}
    assert dict(zip(zip(migration["from_segment"], migration["to_segment"]), migration["customers"])) == moves
    # The report draws and lists the movement.
    page = report.build(spark, batched).read_text(encoding="utf-8")
    section = report_section(page, "migration")
    assert '<img alt="segment migration" src="data:image/png' in section and f"<td>{latest}</td>" in section
    # One snapshot: nobody moved and nobody is new; the view says there is nothing before it (the report: test_report).
    first = spark.table(full.tables.segment_migration).toPandas()
    assert first["from_date"].isna().all() and set(first["from_segment"]) == {"(first snapshot)"}


@pytest.mark.parametrize("task", JOB_ORDER)
def test_rerunning_a_task_changes_no_table_content(spark, two_ways, task):
    _, full = two_ways
    before = _tables(full)
    champion_before = _champion_version(full)
    result = run_task(spark, full, task)
    assert _tables(full) == before
    if task == "bronze":
        assert result.rows_written == {full.tables.transactions_raw: 0}
    # Retraining registers a new version and moves the alias, even when the segments are the same.
    assert _champion_version(full) == champion_before + (task == "train")
    history = spark.table(full.tables.segment_history)
    assert history.select("as_of_date").distinct().count() == 1, "one snapshot per as_of_date"
    assert history.count() == spark.table(full.tables.customer_features).count()
    assert spark.table(full.tables.segment_migration).toPandas()["customers"].sum() == history.count()


def _champion_version(settings) -> int:
    tracking.configure(settings)
    return int(mlflow.MlflowClient().get_model_version_by_alias(settings.model_name, "champion").version)


def test_gold_is_rebuilt_when_the_code_or_the_rules_that_build_it_change(spark, two_ways, monkeypatch, tmp_path):
    import shutil

    from customer_segmentation.gold import task as gold_task

    # The batched job's state, whose gold the last batch built; last in this file, as it changes that gold.
    settings, _ = two_ways
    assert run_task(spark, settings, "gold_features").rows_written == {}, "unchanged inputs: tables kept"

    # An upgrade: a module that builds gold changes (here a comment), the data does not.
    package = tmp_path / "package"
    shutil.copytree(gold_task.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    features = package / "gold" / "features.py"
    features.write_text(features.read_text() + "\n# changed\n")
    monkeypatch.setattr(gold_task, "PACKAGE", package)
    rebuilt = run_task(spark, settings, "gold_features").rows_written
    assert rebuilt[settings.tables.customer_features] > 0, "new code rebuilds gold"
    assert run_task(spark, settings, "gold_features").rows_written == {}

    # A rule file changes.
    config = tmp_path / "config"
    shutil.copytree(gold_task.CONFIG_DIR, config)
    rules = config / "rfm_segments.yaml"
    rules.write_text(rules.read_text().replace("Bought recently, buy often", "Bought lately, buy often"))
    monkeypatch.setattr(gold_task, "CONFIG_DIR", config)
    assert run_task(spark, settings, "gold_features").rows_written[settings.tables.rfm_segments] > 0
