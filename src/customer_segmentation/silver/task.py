"""Task `silver`: new bronze lines into silver.orders or silver.orders_quarantine, and the optional
sources in use into silver.<source> or silver.<source>_quarantine.

Bronze transactions are read as a Delta stream (checkpointed), so each run handles only new
lines, each micro-batch written exactly once. A line is a duplicate only if its content equals an
earlier line with a different identity, which keeps a replayed batch from calling its own lines
duplicates. The optional sources are small (a row per customer, month or product), so they are
rebuilt from bronze in one atomic overwrite per run rather than streamed: a rerun gives the same rows.
"""

from __future__ import annotations

from contextlib import ExitStack

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from ..core.delta import (
    append_exactly_once,
    as_stored,
    create_table_if_missing,
    ensure_schemas,
    process_stream,
    row_counts,
    table_version,
)
from ..core.rules import cleaning_rules
from ..core.settings import Settings
from ..ingest.source_profiles import load_profile
from . import orders, sources
from .quarantine import reconcile_counts

MAX_BRONZE_FILES_PER_BATCH = 200


def clean_orders(spark: SparkSession, settings: Settings) -> dict[str, int]:
    """New bronze transaction lines -> silver.orders or silver.orders_quarantine, then reconcile."""
    tables = settings.tables
    profile = load_profile(settings.source_profile)
    rules = cleaning_rules()
    before = row_counts(spark, [tables.orders, tables.orders_quarantine])
    ensure_schemas(spark, settings)
    for name, spec in ((tables.orders, orders.ORDERS), (tables.orders_quarantine, orders.QUARANTINE),
                       (tables.quality_log, orders.QUALITY_LOG)):
        create_table_if_missing(spark, name, spec)
    orders_stored = spark.table(tables.orders).schema
    # What a batch compares its lines with; an orders table created before `_content_key` has none.
    kept_columns = [c for c in ("_content_hash", "_content_key", "_line_id", "_source_file", "_file_fingerprint")
                    if c in orders_stored.names]

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        # Compare with silver as it was before this batch, and judge once: the three writes below
        # must see the same verdicts. Held on local disk, not in the heap: a large batch in memory
        # costs several times the garbage collection (BENCHMARKS.md).
        existing = spark.sql(f"SELECT {', '.join(kept_columns)} FROM {tables.orders} "
                             f"VERSION AS OF {table_version(spark, tables.orders)}")
        with ExitStack() as held:
            def hold(frame: DataFrame) -> DataFrame:
                frame = frame.localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)
                held.callback(frame.unpersist)
                return frame

            verdicts = orders.judge(batch, existing, profile, settings, rules, hold)
            for rows, target in ((as_stored(orders.to_orders(verdicts.kept), orders_stored), tables.orders),
                                 (orders.to_quarantine(verdicts.rejected), tables.orders_quarantine),
                                 (orders.quality_row(verdicts.rejected, verdicts.lines, settings.run_id, batch_id),
                                  tables.quality_log)):
                append_exactly_once(rows, target, batch, batch_id)

    stream = spark.readStream.option("maxFilesPerTrigger", MAX_BRONZE_FILES_PER_BATCH).table(tables.transactions_raw)
    process_stream(stream, settings.checkpoint(tables.orders), write_batch)
    after = reconcile_counts(spark, tables.transactions_raw, tables.orders, tables.orders_quarantine)
    return {name: after[name] - before.get(name, 0) for name in (tables.orders, tables.orders_quarantine)}


def run(spark: SparkSession, settings: Settings) -> dict[str, int]:
    written = clean_orders(spark, settings)
    tables = settings.tables
    for source in settings.sources_in_use:
        written.update(sources.clean_source(spark, source, getattr(tables, f"{source}_raw"), getattr(tables, source),
                                            getattr(tables, f"{source}_quarantine"), tables.source_quality,
                                            settings.run_id))
    return written
