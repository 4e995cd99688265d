"""The whole job on synthetic data: quarantine reasons, table comments.

Reruns of every task on unchanged input are checked in tests/faults/test_incremental.py."""

import pytest

from customer_segmentation.core.tables import table


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
    assert spark.table(settings.tables.orders_quarantine).columns == table("orders_quarantine").spec().names


def test_the_summary_counts_every_table_in_order_and_skips_missing_ones(spark, synthetic_job):
    from customer_segmentation.core.delta import row_count, row_counts
    from customer_segmentation.ops.jobs import table_summary

    settings, _ = synthetic_job
    summary = table_summary(spark, settings)
    existing = [name for name in settings.tables.all() if spark.catalog.tableExists(name)]
    assert [name for name, _ in summary] == existing
    assert dict(summary) == {name: spark.table(name).count() for name in existing}
    missing = f"{settings.catalog}.{settings.gold_schema}.no_such_table"
    assert row_counts(spark, [missing, existing[0]]) == {existing[0]: dict(summary)[existing[0]]}
    assert row_count(spark, missing) == 0
