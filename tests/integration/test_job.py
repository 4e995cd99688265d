"""The whole job on synthetic data: quarantine reasons, table comments.

Reruns of every task on unchanged input are checked in tests/faults/test_incremental.py."""

import pytest

from customer_segmentation.core.tables import table
from testkit import table_paths


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
    from deltalake import DeltaTable

    from customer_segmentation.core.delta import row_count, row_counts
    from customer_segmentation.ops.jobs import table_summary

    settings, _ = synthetic_job
    summary = table_summary(spark, settings)
    existing = [name for name in settings.tables.all() if spark.catalog.tableExists(name)]
    assert [name for name, _ in summary] == existing
    # Each table's rows as delta-rs counts them, each view's as Spark does.
    names = settings.tables.delta_tables()
    tables = {names[short]: DeltaTable(str(path)).to_pyarrow_dataset().count_rows()
              for short, path in table_paths(settings).items()}
    assert dict(summary) == {name: tables[name] if name in tables else spark.table(name).count() for name in existing}
    missing = f"{settings.catalog}.{settings.gold_schema}.no_such_table"
    assert row_counts(spark, [missing, existing[0]]) == {existing[0]: dict(summary)[existing[0]]}
    assert row_count(spark, missing) == 0


def _sums(spark) -> tuple[bool, list]:
    """A new query's rows, and whether it ran generated code (a DataFrame keeps the plan it got
    first; adaptive execution adds the generated stages to its plan as it runs them)."""
    query = spark.range(1000).selectExpr("id % 7 AS k", "id * 2 AS v").groupBy("k").sum("v")
    rows = sorted(query.collect())
    return "*(1) " in query._jdf.queryExecution().executedPlan().toString(), rows  # a generated stage's mark


def _compiled(spark) -> bool:
    return _sums(spark)[0]


def test_a_small_source_interprets_its_queries_and_the_session_is_restored_after(spark, tmp_path):
    from customer_segmentation.core.spark import interpreted_expressions

    spark.conf.set("spark.sql.codegen.wholeStage", "true")
    with interpreted_expressions(spark, True):
        compiled, interpreted = _sums(spark)
        assert not compiled
    assert spark.conf.get("spark.sql.codegen.wholeStage") == "true"
    assert spark.conf.get("spark.sql.codegen.factoryMode", None) is None
    assert _sums(spark) == (True, interpreted)
    with pytest.raises(ValueError), interpreted_expressions(spark, True):
        raise ValueError("the task failed")
    assert _compiled(spark), "restored after an error too"
    with interpreted_expressions(spark, False):
        assert _compiled(spark)

    class ServerlessSession:  # refuses to read or change these settings
        @property
        def conf(self):
            raise AssertionError("the session's settings were touched")

    with interpreted_expressions(ServerlessSession(), False):
        pass


def test_which_tasks_interpret_follows_the_size_of_the_landing_files(tmp_path, monkeypatch):
    from customer_segmentation.core.settings import Settings
    from customer_segmentation.ops import jobs

    landing = tmp_path / "landing"
    (landing / "2011").mkdir(parents=True)
    with open(landing / "2011" / "day.csv", "wb") as f:  # a sub-folder's files count too
        f.truncate(8 << 20)
    settings = Settings(landing_path=str(landing))
    assert jobs.landing_bytes(str(landing)) == 8 << 20
    assert {name: jobs.interprets(settings, name) for name in jobs.JOB_ORDER} == {
        "bronze": False, "silver": False, "gold_features": True, "train": True, "lifetime_value": True, "publish": True}
    assert not any(jobs.interprets(settings.replace(landing_path="s3://bucket/landing"), n) for n in jobs.JOB_ORDER)
    monkeypatch.setattr(jobs, "on_databricks", lambda: True)
    assert not any(jobs.interprets(settings, name) for name in jobs.JOB_ORDER)
