"""The quarantine kit, shared by orders and the optional sources: the first failing check as the
reject reason, the exact-duplicate key, duplicate marking, counts per reason and reconciliation.

Every bronze line ends in exactly one of the kept table and the quarantine; `reconcile_counts`
proves it after every run.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from ..core.delta import row_counts
from ..core.errors import PipelineError

Check = tuple[str, Column, Column]  # (reject reason, failed?, detail)


def first_failure(checks: list[Check]) -> tuple[Column, Column]:
    """(reason, detail) of the first check that fails, in the order given; null when none does."""
    reason, detail = F.lit(None).cast("string"), F.lit(None).cast("string")
    for code, failed, why in reversed(checks):
        reason = F.when(failed, F.lit(code)).otherwise(reason)
        detail = F.when(failed, why).otherwise(detail)
    return reason, detail


def reject_detail(reason: Column, checks: list[Check]) -> Column:
    """The detail of the check whose reason `reason` is (as `first_failure` gives it); null for any other."""
    detail = F.lit(None).cast("string")
    for code, _, why in reversed(checks):
        detail = F.when(reason == F.lit(code), why).otherwise(detail)
    return detail


def content_hash(columns: tuple[str, ...], key: tuple[str, ...] | None = None) -> Column:
    """Duplicate key: the given fields as they arrived (null and empty kept apart); with `key`,
    only its fields count (the others hash as null)."""
    return F.sha2(_content(columns, key), 256)


def content_key(columns: tuple[str, ...], key: tuple[str, ...] | None = None) -> Column:
    """A 64-bit hash of what `content_hash` hashes: lines with one content hash have one key
    (lines with different ones may share a key)."""
    return F.xxhash64(_content(columns, key))


def _content(columns: tuple[str, ...], key: tuple[str, ...] | None) -> Column:
    fields = [F.col(c) if key is None or c in key else F.lit(None) for c in columns]
    return F.concat_ws("\u001f", *[F.coalesce(f, F.lit("\u0000")) for f in fields])


def mark_duplicates(classified: DataFrame, existing: DataFrame | None = None) -> DataFrame:
    """Reject valid lines that repeat an earlier valid line exactly: in `classified`, or in
    `existing` (lines already kept, with `_content_hash`, `_line_id` and `_source_file`).

    Earlier means: already kept, else first by ingestion time, file and line id. A line already
    kept under its own id is not its own duplicate, so a replayed batch changes nothing.
    """
    valid = F.col("reject_reason").isNull()
    # Valid lines first within a hash, so a line's occurrence counts only valid lines before it.
    # The window comes before the join, partitioned by the hash alone: its sort then also serves
    # the join, and the batch is shuffled and sorted once.
    order = Window.partitionBy("_content_hash").orderBy(valid.desc(), "_ingested_at", "_source_file", "_line_id")
    marked = classified.select("*", F.row_number().over(order).alias("_occurrence"),
                               F.first("_source_file").over(order).alias("_first_file"))
    if existing is None:
        marked = marked.withColumn("_seen_line_id", F.lit(None).cast("string")).withColumn(
            "_seen_file", F.lit(None).cast("string"))
    else:
        first_seen = (existing.select("_content_hash", F.col("_line_id").alias("_seen_line_id"),
                                      F.col("_source_file").alias("_seen_file"))
                      .dropDuplicates(["_content_hash"]))
        marked = marked.join(first_seen, "_content_hash", "left")
    kept_before = valid & F.col("_seen_line_id").isNotNull() & (F.col("_seen_line_id") != F.col("_line_id"))
    repeated = valid & F.col("_seen_line_id").isNull() & (F.col("_occurrence") > 1)
    # The same words whether the kept line came in this batch or an earlier one, so landing files
    # in batches gives the same quarantine as landing them at once.
    kept_from = F.when(kept_before, F.col("_seen_file")).when(repeated, F.col("_first_file"))
    return (marked
            .withColumn("reject_detail", F.when(kept_from.isNotNull(), F.concat(
                F.lit("exact duplicate of a line kept from "), kept_from)).otherwise(F.col("reject_detail")))
            .withColumn("reject_reason", F.when(kept_from.isNotNull(), F.lit("duplicate_line"))
                        .otherwise(F.col("reject_reason")))
            .drop("_seen_line_id", "_seen_file", "_occurrence", "_first_file"))


def mark_redelivered_files(classified: DataFrame, existing: DataFrame) -> DataFrame:
    """Reject the valid lines of a file whose lines were all delivered before under another name
    (the same `_file_fingerprint`): in `existing` (kept lines, with `_file_fingerprint` and
    `_source_file`) or earlier in `classified` (by ingestion time and file). For layouts without
    line identity, where identical lines are separate purchases: only a whole file is a duplicate."""
    valid = F.col("reject_reason").isNull()
    earlier = Window.partitionBy("_file_fingerprint").orderBy("_ingested_at", "_source_file")
    delivered = (existing.groupBy("_file_fingerprint").agg(F.min("_source_file").alias("_delivered_as")))
    marked = (classified.select("*", F.first("_source_file").over(earlier).alias("_first_in_batch"))
              .join(F.broadcast(delivered), "_file_fingerprint", "left"))
    first = F.coalesce("_delivered_as", "_first_in_batch")
    again = valid & (first != F.col("_source_file"))
    return (marked
            .withColumn("reject_detail", F.when(again, F.concat(F.lit("the same file was already delivered as "),
                                                                first)).otherwise(F.col("reject_detail")))
            .withColumn("reject_reason", F.when(again, F.lit("duplicate_line")).otherwise(F.col("reject_reason")))
            .drop("_first_in_batch", "_delivered_as"))


def rejects_by_reason(marked: DataFrame) -> tuple[int, dict[str, int]]:
    """Lines in `marked`, and how many were rejected for each reason (one Spark job)."""
    counts = marked.groupBy("reject_reason").count().collect()
    return (sum(r["count"] for r in counts),
            {r["reject_reason"]: r["count"] for r in counts if r["reject_reason"] is not None})


def reconcile_counts(spark: SparkSession, bronze_table: str, kept_table: str, quarantine_table: str) -> dict[str, int]:
    """Every line of `bronze_table` is in exactly one of `kept_table` and `quarantine_table`;
    anything else is a bug. Returns the three tables' row counts."""
    counts = row_counts(spark, [bronze_table, kept_table, quarantine_table])
    bronze, kept, quarantine = (counts.get(name, 0) for name in (bronze_table, kept_table, quarantine_table))
    if bronze != kept + quarantine:
        raise PipelineError(f"reconciliation failed: {bronze_table} has {bronze:,} lines, {kept_table} {kept:,} "
                            f"+ {quarantine_table} {quarantine:,} = {kept + quarantine:,}")
    return counts
