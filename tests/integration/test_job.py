"""The whole job on synthetic data: tables, idempotency, table comments."""

import mlflow
import pytest

from customer_segmentation import tracking
from customer_segmentation.jobs import run_job
from customer_segmentation.silver import quarantine_spec


# Columns that record which run wrote a row, not what the data says.
LINEAGE = {"_ingested_at", "processed_at", "run_id", "model_version", "training_run_id", "mlflow_run_id",
           "candidate_run_id"}


def _stable(value):
    """Doubles to 9 significant digits: distributed sums may differ in the last bits between runs."""
    return float(f"{value:.9g}") if isinstance(value, float) else value


def _snapshot(spark, settings):
    """Every table's rows, minus lineage columns."""
    volatile = LINEAGE
    snapshot = {}
    for name in settings.tables.delta_tables().values():
        if spark.catalog.tableExists(name):
            df = spark.table(name)
            keep = [c for c in df.columns if c not in volatile]
            snapshot[name] = sorted(tuple(_stable(v) for v in r) for r in df.select(*keep).collect())
    return snapshot


def test_running_the_whole_job_twice_gives_identical_tables(spark, synthetic_job):
    settings, _ = synthetic_job
    tracking.configure(settings)
    client = mlflow.MlflowClient()
    version_before = client.get_model_version_by_alias(settings.model_name, "champion").version
    before = _snapshot(spark, settings)
    results = run_job(spark, settings)
    assert results[0].rows_written == {settings.tables.transactions_raw: 0}
    assert _snapshot(spark, settings) == before
    # A second training registers a new version and moves the alias; history keeps one snapshot.
    assert int(client.get_model_version_by_alias(settings.model_name, "champion").version) == int(version_before) + 1
    history = spark.table(settings.tables.segment_history)
    assert history.select("as_of_date").distinct().count() == 1
    assert history.count() == spark.table(settings.tables.customer_features).count()
    migration = spark.table(settings.tables.segment_migration).toPandas()
    assert migration["customers"].sum() == history.count()


def test_quarantine_reasons_on_synthetic_traps(spark, synthetic_job, synthetic_data):
    import json

    settings, _ = synthetic_job
    manifest = json.loads((synthetic_data / "manifest.json").read_text())
    tables = settings.tables
    assert spark.table(tables.transactions_raw).count() == manifest["lines"]
    reasons = {r["reject_reason"]: r["count"] for r in
               spark.table(tables.orders_quarantine).groupBy("reject_reason").count().collect()}
    assert reasons["duplicate_line"] > 0 and reasons["non_positive_price"] > 0
    assert spark.table(tables.orders).count() + sum(reasons.values()) == manifest["lines"]


@pytest.mark.parametrize("table", ["customer_features", "rfm_segments", "monthly_revenue", "revenue_concentration",
                                   "orders", "orders_quarantine", "quality_log"])
def test_tables_and_columns_carry_comments(spark, synthetic_job, table):
    settings, _ = synthetic_job
    name = getattr(settings.tables, table)
    described = spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
    columns = [r for r in described if r["col_name"] and not r["col_name"].startswith("#")]
    spark_columns = set(spark.table(name).columns)
    assert all(r["comment"] for r in columns if r["col_name"] in spark_columns), table
    assert any(r["col_name"] == "Comment" and r["data_type"] for r in described), f"{table} has a table comment"


def test_quarantine_columns_are_bronze_plus_reason(spark, synthetic_job):
    settings, _ = synthetic_job
    assert spark.table(settings.tables.orders_quarantine).columns == quarantine_spec().names
