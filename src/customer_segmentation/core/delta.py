"""Small readers and writers that know table names and Delta options (the I/O edge)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pyspark.errors import AnalysisException
from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from .settings import Settings
from .tables import Column, TableSpec


def sql_string(text: str) -> str:
    """A Spark SQL string literal of `text` (backslashes and quotes escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ensure_schemas(spark: SparkSession, settings: Settings) -> None:
    for schema in dict.fromkeys(settings.schemas):
        # Identifiers were validated by Settings; backticks keep them identifiers.
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS `{settings.catalog}`.`{schema}`")


def create_table_if_missing(spark: SparkSession, name: str, spec: TableSpec) -> bool:
    """Create the (empty) table unless it exists; True when this call created it."""
    if table_exists(spark, name):
        return False
    create_table(spark, name, spec)
    return True


def _column_ddl(column: Column) -> str:
    return (f"`{column.name}` {column.type.simpleString()}{'' if column.nullable else ' NOT NULL'} "
            f"COMMENT {sql_string(column.comment)}")


def create_table(spark: SparkSession, name: str, spec: TableSpec, replace: bool = False) -> None:
    """Create the empty table; `replace`: in place of the one of that name, whose history and grants it keeps."""
    # DDL rather than DeltaTableBuilder: the builder does not take three-level names.
    columns = ",\n  ".join(_column_ddl(c) for c in spec.columns)
    create = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE IF NOT EXISTS"
    statement = f"{create} {name} (\n  {columns}\n) USING DELTA COMMENT {sql_string(spec.comment)}"
    if spec.stats_columns is not None:
        statement += (f"\nTBLPROPERTIES ('delta.dataSkippingStatsColumns' = "
                      f"{sql_string(','.join(spec.stats_columns))})")
    try:
        spark.sql(statement)
    except AnalysisException as error:
        if not _remove_uncommitted_leftover(spark, name, error):
            raise
        spark.sql(statement)


def _remove_uncommitted_leftover(spark: SparkSession, name: str, error: Exception) -> bool:
    """Local warehouse only: a process killed while creating a table can leave its folder behind,
    unregistered in the metastore, with no commit or only Delta's creation commit (maybe cut off)
    in it. No rows were ever committed there, so removing it loses nothing."""
    if "not a Delta table" not in str(error) or not name.startswith("spark_catalog."):
        return False
    _, schema, table = name.split(".")
    warehouse = spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:")
    folder = Path(warehouse) / f"{schema}.db" / table
    if not folder.is_dir():
        return False
    commits = sorted((folder / "_delta_log").glob("*.json"))
    if [c.name for c in commits] not in ([], ["00000000000000000000.json"]):
        return False
    if commits and '"add"' in commits[0].read_text(encoding="utf-8", errors="replace"):
        return False  # the first commit added data: not a leftover of creating an empty table
    shutil.rmtree(folder)
    return True


def conform(df: DataFrame, spec: TableSpec) -> DataFrame:
    """Select the spec's columns in order, cast to their declared types."""
    return df.select(*[F.col(c.name).cast(c.type).alias(c.name) for c in spec.columns])


def as_stored(df: DataFrame, stored: StructType) -> DataFrame:
    """`df` as its table (`stored`, its schema) holds it: each column cast to the table's type where
    they differ, and without the columns the table lacks. A table created before its spec narrowed a
    type (silver.orders' `line_amount` was decimal(24,4)) keeps it, and one created before its spec
    added a column (silver.orders' `_content_key`) goes on without it: Delta's append refuses rather
    than casts, or adds a column whose earlier rows would be null."""
    types = {field.name: field.dataType for field in stored}
    if all(types.get(field.name) == field.dataType for field in df.schema):
        return df
    return df.select(*[F.col(field.name).cast(types[field.name]).alias(field.name)
                       for field in df.schema if field.name in types])


def overwrite_table(spark: SparkSession, name: str, df: DataFrame, spec: TableSpec,
                    replacing: SparkColumn | None = None) -> int:
    """Replace the table's rows that match `replacing` (all by default) with `df`'s in one Delta
    commit, the table first given the spec's columns and comments (`_fit_columns`); returns the
    number of rows written."""
    # Counted as they are written (no second query, no read of the table's history afterwards).
    written = Observation()
    writer = conform(df, spec).observe(written, F.count(F.lit(1)).alias("rows")).writeTo(name)
    # Asked of the catalog first: reading a missing table fails a query, and once the session has an
    # Observation, Spark 4.0's listener for them logs every failed query as an ERROR with its trace.
    stored = spark.table(name).schema if table_exists(spark, name) else None
    if stored is None:
        create_table(spark, name, spec)
    if stored is None or not _fit_columns(spark, name, stored, spec, replaceable=replacing is None):
        # Nothing to replace: an append skips rebuilding the new table's state to find files to
        # remove (a few Spark jobs a table; measured in BENCHMARKS.md).
        writer.append()
    else:
        writer.overwrite(F.lit(True) if replacing is None else replacing)
    return written.get["rows"]


Rows = DataFrame | Callable[[], DataFrame]
Output = tuple[Rows, TableSpec] | tuple[Rows, TableSpec, SparkColumn]


def overwrite_tables(spark: SparkSession, outputs: dict[str, Output]) -> dict[str, int]:
    """Overwrite several independent tables concurrently, in the order given (each whole, or its rows
    matching a third element, as `overwrite_table`); returns each table's rows written. A table's
    rows may be a function that builds them (one that runs Spark jobs of its own, such as fitting a
    model), called in the writing thread.

    Small tables cost mostly driver-side latency (catalog calls, Delta commits, many small jobs),
    which overlaps well across threads.
    """
    def write(name: str) -> int:
        rows, spec, *replacing = outputs[name]
        return overwrite_table(spark, name, rows() if callable(rows) else rows, spec, *replacing)

    with ThreadPoolExecutor(max_workers=min(4, len(outputs))) as pool:
        return dict(zip(outputs, pool.map(write, outputs)))


def _fit_columns(spark: SparkSession, name: str, stored: StructType, spec: TableSpec, replaceable: bool) -> bool:
    """Give an existing table (its schema `stored`) the spec's columns and comments before a write;
    False when it was replaced by an empty one.

    Columns the spec added (a new release) are added in place, where the spec puts them, and column
    comments it changed are changed: the table keeps its rows, history and grants. A table replaced
    whole (`replaceable`) whose columns the spec dropped or reordered (one that follows the optional
    sources, run without one), or that would need a NOT NULL column Delta cannot add to rows already
    written, is replaced (CREATE OR REPLACE) by an empty table of the spec's columns, which keeps its
    history and grants. A table written in part keeps every column it has (its rows are history): rows
    written after a release dropped one hold null there (Delta fills a column a write lacks)."""
    if stored.names != spec.names:
        added = [(i, c) for i, c in enumerate(spec.columns) if c.name not in stored.names]
        kept_in_order = [n for n in spec.names if n in stored.names] == stored.names
        if replaceable and not (kept_in_order and all(c.nullable for _, c in added)):
            create_table(spark, name, spec, replace=True)
            return False
        for i, column in added:
            position = f"AFTER `{spec.columns[i - 1].name}`" if i else "FIRST"
            spark.sql(f"ALTER TABLE {name} ADD COLUMNS ({_column_ddl(column)} {position})")
    comments = {field.name: field.metadata.get("comment") for field in stored}
    for column in spec.columns:
        if column.name in comments and comments[column.name] != column.comment:
            spark.sql(f"ALTER TABLE {name} ALTER COLUMN `{column.name}` COMMENT {sql_string(column.comment)}")
    return True


def set_property(spark: SparkSession, name: str, key: str, value: str) -> None:
    spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ({sql_string(key)} = {sql_string(value)})")


def get_property(spark: SparkSession, name: str, key: str) -> str | None:
    rows = spark.sql(f"SHOW TBLPROPERTIES {name}").collect()
    return next((row["value"] for row in rows if row["key"] == key), None)


def table_exists(spark: SparkSession, name: str) -> bool:
    return spark.catalog.tableExists(name)


def row_count(spark: SparkSession, name: str) -> int:
    """The table's row count, 0 if it does not exist."""
    return row_counts(spark, [name]).get(name, 0)


def row_counts(spark: SparkSession, names: list[str]) -> dict[str, int]:
    """The row count of each of the tables that exist, in the order given.

    Delta answers a count from the table's log, so each costs mostly driver time (the table's
    snapshot, planning, one job), which overlaps well across threads (BENCHMARKS.md).
    """
    existing = [name for name in names if table_exists(spark, name)]
    if not existing:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(existing))) as pool:
        return dict(zip(existing, pool.map(lambda name: spark.table(name).count(), existing)))


def table_version(spark: SparkSession, name: str) -> int:
    return spark.sql(f"DESCRIBE HISTORY {name} LIMIT 1").first()["version"]


def append_exactly_once(df: DataFrame, table: str, batch: DataFrame, batch_id: int) -> None:
    """Append `df`, computed from a micro-batch, to `table` with Delta's idempotent-write options:
    `txnAppId` is the streaming query's id (kept in its checkpoint, so the same across restarts)
    and `txnVersion` the batch id, so a batch replayed after a crash writes nothing twice."""
    app_id = batch.sparkSession.sparkContext.getLocalProperty("sql.streaming.queryId")
    (df.write.format("delta").mode("append").option("txnAppId", app_id).option("txnVersion", batch_id)
     .saveAsTable(table))


def process_stream(stream: DataFrame, checkpoint: str, handle: Callable[[DataFrame, int], None]) -> None:
    """Run `stream` over everything new since its checkpoint (`availableNow`), one micro-batch at a
    time: `handle(batch, batch_id)` writes each with `append_exactly_once`."""
    def in_batch(batch: DataFrame, batch_id: int) -> None:
        # A stream's session has adaptive execution off (it would change a stateful query's
        # partitions). A micro-batch here is a batch job: adaptive, it sizes its shuffles to the
        # data (one partition for a small batch; more than the default for a large one, whose sort
        # would otherwise spill) instead of `spark.sql.shuffle.partitions` for any size.
        batch.sparkSession.conf.set("spark.sql.adaptive.enabled", "true")
        batch.sparkSession.conf.set("spark.sql.adaptive.coalescePartitions.initialPartitionNum",
                                    4 * int(batch.sparkSession.conf.get("spark.sql.shuffle.partitions")))
        handle(batch, batch_id)

    query = (stream.writeStream.foreachBatch(in_batch).option("checkpointLocation", checkpoint)
             .trigger(availableNow=True).start())
    query.awaitTermination()
