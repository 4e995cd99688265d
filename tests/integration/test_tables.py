"""Table writers and counts: a first write creates the table with its comments, later writes replace
rows; reconciliation compares three counts; a reference date is checked before the first write."""

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType, IntegerType, StringType

from customer_segmentation.core.delta import create_table_if_missing, ensure_schemas, overwrite_table
from customer_segmentation.core.errors import ConfigError, PipelineError
from customer_segmentation.core.tables import Column, TableSpec, table
from customer_segmentation.ops.jobs import check_as_of_date_before_any_write, run_task
from customer_segmentation.silver.quarantine import reconcile_counts
from testkit import copy_files

SPEC = TableSpec(comment="Test table", columns=(
    Column("batch", IntegerType(), "Which write the row came from"),
    Column("label", StringType(), "A label"),
))


def rows(spark, batch, labels):
    # Columns in another order and wider types than the spec: the writer conforms them.
    return spark.createDataFrame([(label, batch) for label in labels], "label string, batch long")


def failed_queries(spark) -> list[str]:
    """The error of every failed query the session has run, as Spark's SQL listeners were told."""
    spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty()
    executions = spark._jsparkSession.sharedState().statusStore().executionsList()
    errors = (executions.apply(i).errorMessage() for i in range(executions.size()))
    return [error.get() for error in errors if error.isDefined() and error.get()]


def test_the_first_write_creates_the_table_and_later_ones_replace_all_or_only_the_matching_rows(
        spark, make_settings):
    settings = make_settings()
    ensure_schemas(spark, settings)
    name = f"{settings.catalog}.{settings.gold_schema}.written"

    failed_before = failed_queries(spark)
    assert overwrite_table(spark, name, rows(spark, 1, ["a", "b", "c"]), SPEC) == 3, "rows written"
    # A failed query (reading the table before it exists) is logged as an ERROR with its trace by
    # the listener of the write's Observation: a first run printed one per new table.
    assert failed_queries(spark) == failed_before, "finding the table missing fails no query"
    assert sorted(spark.table(name).collect()) == [(1, "a"), (1, "b"), (1, "c")]
    described = {r["col_name"]: r["comment"] for r in spark.sql(f"DESCRIBE TABLE {name}").collect()}
    assert described["batch"] == "Which write the row came from"

    overwrite_table(spark, name, rows(spark, 2, ["d"]), SPEC)
    assert spark.table(name).collect() == [(2, "d")], "a second write replaces every row"

    overwrite_table(spark, name, rows(spark, 3, ["e", "f"]), SPEC, replacing=F.col("batch") == 3)
    assert overwrite_table(spark, name, rows(spark, 3, ["g"]), SPEC, replacing=F.col("batch") == 3) == 1
    assert sorted(spark.table(name).collect()) == [(2, "d"), (3, "g")], "only the matching rows are replaced"
    history = spark.sql(f"DESCRIBE HISTORY {name}").orderBy("version").select("operation").collect()
    assert [r[0] for r in history] == ["CREATE TABLE"] + ["WRITE"] * 4, "one commit per write"



def test_a_release_that_adds_a_column_or_rewords_one_changes_the_table_in_place(spark, make_settings):
    settings = make_settings()
    ensure_schemas(spark, settings)
    name = f"{settings.catalog}.{settings.gold_schema}.evolving"

    def operations():
        return [r[0] for r in spark.sql(f"DESCRIBE HISTORY {name}").orderBy("version").select("operation").collect()]

    def comments():
        return {r["col_name"]: r["comment"] for r in spark.sql(f"DESCRIBE TABLE {name}").collect()}

    overwrite_table(spark, name, rows(spark, 1, ["a"]), SPEC)
    note = Column("note", StringType(), "Added by a later release")
    reworded = Column("label", StringType(), "A label, reworded")
    later = replace(SPEC, columns=(SPEC.columns[0], note, reworded))
    overwrite_table(spark, name, rows(spark, 2, ["b"]).withColumn("note", F.lit("new")), later)
    assert spark.table(name).columns == ["batch", "note", "label"], "where the spec puts it"
    assert spark.table(name).collect() == [(2, "new", "b")]
    assert comments()["note"] == "Added by a later release" and comments()["label"] == "A label, reworded"
    assert operations() == ["CREATE TABLE", "WRITE", "ADD COLUMNS", "CHANGE COLUMN", "WRITE"], "history kept"
    overwrite_table(spark, name, rows(spark, 3, ["c"]).withColumn("note", F.lit("same")), later)
    assert operations()[-1:] == ["WRITE"] and len(operations()) == 6, "nothing to change: the write alone"

    # A table written in part takes the added column too: rows written before it hold null there.
    tagged = replace(later, columns=(*later.columns, Column("tag", StringType(), "Added to a table written in part")))
    overwrite_table(spark, name, rows(spark, 4, ["d"]).select("*", F.lit("n").alias("note"), F.lit("t").alias("tag")),
                    tagged, replacing=F.col("batch") == 4)
    assert sorted(spark.table(name).collect()) == [(3, "same", "c", None), (4, "n", "d", "t")]


def test_a_table_replaced_whole_whose_columns_go_is_replaced_with_its_history(spark, make_settings):
    # As customer_features when a run no longer uses an optional source.
    settings = make_settings()
    ensure_schemas(spark, settings)
    name = f"{settings.catalog}.{settings.gold_schema}.narrowed"
    wider = replace(SPEC, columns=(*SPEC.columns, Column("extra", StringType(), "From an optional source")))
    overwrite_table(spark, name, rows(spark, 1, ["a"]).withColumn("extra", F.lit("x")), wider)
    overwrite_table(spark, name, rows(spark, 2, ["b"]), SPEC)
    assert spark.table(name).columns == ["batch", "label"] and spark.table(name).collect() == [(2, "b")]
    history = spark.sql(f"DESCRIBE HISTORY {name}").orderBy("version").select("operation").collect()
    assert [r[0] for r in history] == ["CREATE TABLE", "WRITE", "CREATE OR REPLACE TABLE", "WRITE"]
    assert spark.read.option("versionAsOf", 1).table(name).collect() == [(1, "a", "x")], "the earlier rows kept"


def test_a_table_with_named_statistics_columns_keeps_statistics_of_those_alone(spark, make_settings):
    settings = make_settings()
    ensure_schemas(spark, settings)
    name = f"{settings.catalog}.{settings.bronze_schema}.raw"
    spec = table("transactions_raw").spec()
    assert spec.stats_columns == ("_ingested_at",)
    lines = spark.range(3).select(*[(F.current_timestamp() if c.name == "_ingested_at" else F.lit(c.name)).alias(c.name)
                                    for c in spec.columns])
    overwrite_table(spark, name, lines, spec)

    location = spark.sql(f"DESCRIBE DETAIL {name}").first()["location"].removeprefix("file:")
    commit = Path(location, "_delta_log", "00000000000000000001.json").read_text().splitlines()
    stats = [json.loads(json.loads(line)["add"]["stats"]) for line in commit if '"add"' in line]
    assert stats and all(set(s["minValues"]) == {"_ingested_at"} and s["numRecords"] >= 1 for s in stats)
    assert spark.table(name).count() == 3


def test_reconciliation_names_the_tables_whose_counts_disagree(spark, make_settings):
    settings = make_settings()
    ensure_schemas(spark, settings)
    bronze, kept, quarantine = (f"{settings.catalog}.{settings.silver_schema}.{n}" for n in ("raw", "kept", "rejected"))
    overwrite_table(spark, bronze, rows(spark, 1, ["a", "b", "c"]), SPEC)
    overwrite_table(spark, kept, rows(spark, 1, ["a"]), SPEC)
    overwrite_table(spark, quarantine, rows(spark, 1, ["b"]), SPEC)
    with pytest.raises(PipelineError, match=f"{bronze} has 3 lines, {kept} 1 \\+ {quarantine} 1 = 2"):
        reconcile_counts(spark, bronze, kept, quarantine)
    overwrite_table(spark, quarantine, rows(spark, 1, ["b", "c"]), SPEC)
    assert reconcile_counts(spark, bronze, kept, quarantine) == {bronze: 3, kept: 1, quarantine: 2}


def test_silver_appends_to_an_orders_table_created_with_the_earlier_wider_amount(spark, make_settings, synthetic_data):
    # silver.orders' line_amount was decimal(24,4); Delta narrows no column, and its append refuses
    # a narrower decimal than the table's rather than casting it.
    settings = make_settings()
    ensure_schemas(spark, settings)
    spec = table("orders").spec()
    wider = replace(spec, columns=tuple(replace(c, type=DecimalType(24, 4)) if c.name == "line_amount" else c
                                        for c in spec.columns))
    create_table_if_missing(spark, settings.tables.orders, wider)
    copy_files(sorted((synthetic_data / "transactions").glob("*.csv"))[:3], Path(settings.landing_path))
    for task in ("bronze", "silver"):
        run_task(spark, settings, task)

    kept = spark.table(settings.tables.orders)
    assert kept.schema["line_amount"].dataType == DecimalType(24, 4)
    assert kept.count() > 0
    assert kept.where(F.col("line_amount") != F.col("quantity") * F.col("unit_price")).isEmpty()


def test_silver_goes_on_with_an_orders_table_created_before_its_content_key(spark, make_settings, synthetic_data):
    # Such a table keeps its columns, and a batch finds the kept lines it repeats by their content hash.
    settings = make_settings()
    ensure_schemas(spark, settings)
    spec = table("orders").spec()
    create_table_if_missing(spark, settings.tables.orders,
                            replace(spec, columns=tuple(c for c in spec.columns if c.name != "_content_key")))
    first = sorted((synthetic_data / "transactions").glob("*.csv"))[0]
    landing = Path(settings.landing_path)
    copy_files([first], landing)
    for task in ("bronze", "silver"):
        run_task(spark, settings, task)
    kept = spark.table(settings.tables.orders).count()
    [kept_from] = [r[0] for r in spark.table(settings.tables.orders).select("_source_file").distinct().collect()]
    (landing / f"again-{first.name}").write_bytes(first.read_bytes())  # every line of it delivered again
    for task in ("bronze", "silver"):
        run_task(spark, settings, task)

    assert "_content_key" not in spark.table(settings.tables.orders).columns
    assert spark.table(settings.tables.orders).count() == kept > 0
    again = F.col("_source_file").endswith(f"again-{first.name}")
    repeats = spark.table(settings.tables.orders_quarantine).where(
        again & (F.col("reject_detail") == f"exact duplicate of a line kept from {kept_from}"))
    assert repeats.count() == spark.table(settings.tables.transactions_raw).where(again).count()


def test_a_reference_date_before_the_first_kept_line_is_refused_before_anything_is_written(spark, make_settings):
    # An empty state: the date is checked against the lines silver would keep, read from the
    # landing files. A rejected line (zero quantity) dated earlier does not count.
    settings = make_settings(as_of_date=dt.date(2010, 6, 1))
    landing = Path(settings.landing_path)
    landing.mkdir(parents=True)
    (landing / "2011-01-04.csv").write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536001,85123A,HEART HOLDER,0,2009-01-05 10:00:00,2.55,17850.0,United Kingdom\n"
        "536002,85123A,HEART HOLDER,6,2011-01-04 10:00:00,2.55,17850.0,United Kingdom\n")
    with pytest.raises(ConfigError, match=r"2010-06-01 is not after the first invoice \(2011-01-04\)"):
        check_as_of_date_before_any_write(spark, settings)
    assert not spark.catalog.tableExists(settings.tables.transactions_raw)
    check_as_of_date_before_any_write(spark, settings.replace(as_of_date=dt.date(2011, 1, 5)))
