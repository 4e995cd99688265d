"""Bronze: incremental, exactly-once ingestion of landing files into Delta.

One function reads new files as a stream: Auto Loader (`cloudFiles`) on Databricks, Spark's
file stream source locally, both with `trigger(availableNow=True)` and a checkpoint, so files
already ingested are skipped and new files are picked up on the next run. Each micro-batch is
appended with Delta's idempotent-write options (`txnAppId` = the query id kept in the
checkpoint, `txnVersion` = the batch id): a batch replayed after a crash is not written twice.
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, TimestampType

from . import landing
from .errors import SourceError
from .profiles import OPTIONAL_SOURCES, TRANSACTIONS, SourceProfile, SourceSpec, load_profile
from .settings import Settings, on_databricks
from .tables import Column, TableSpec, create_table_if_missing, ensure_schemas, row_count

MAX_FILES_PER_BATCH = 1000

CANONICAL_COMMENTS = {
    "invoice_no": "Invoice number as it arrived (a leading C marks a cancellation)",
    "stock_code": "Product or service code as it arrived",
    "description": "Product description as it arrived",
    "quantity": "Quantity as it arrived (text)",
    "invoice_date": "Invoice date and time as it arrived (text)",
    "unit_price": "Unit price as it arrived (text)",
    "line_amount": "Line amount as it arrived, for layouts that give an amount instead of a unit price",
    "customer_id": "Customer ID as it arrived (text; may be empty)",
    "country": "Customer country as it arrived",
}
LINEAGE_COMMENTS = {
    "_raw_line": "The line exactly as it arrived in the landing file",
    "_rescued_data": "JSON list of fields the source profile does not use, or surplus fields, if any",
    "_malformed": "Why the line could not be split into the expected fields (null when it could)",
    "_source_file": "Full path of the landing file the line came from",
    "_source_profile": "Source profile used to read the file",
    "_ingested_at": "When the line was ingested (UTC)",
    "_line_id": "Stable identifier of the line: hash of file, text and occurrence",
}


def bronze_table_spec(spec: SourceSpec) -> TableSpec:
    canonical = [Column(name, StringType(), CANONICAL_COMMENTS.get(name, f"{name} as it arrived"))
                 for name in spec.columns]
    lineage = [Column(name, TimestampType() if name == "_ingested_at" else StringType(), comment)
               for name, comment in LINEAGE_COMMENTS.items()]
    return TableSpec(
        comment=f"Raw {spec.name} lines, one row per landing line exactly as it arrived, with lineage.",
        columns=tuple(canonical + lineage),
        # Raw strings are read whole by silver's stream; only the ingestion time is worth skipping on.
        stats_columns=("_ingested_at",),
    )


def check_landing_folder(path: str, setting: str = "landing_path") -> None:
    """Fail early, before any table is touched, if the folder is missing or holds no files."""
    if "://" in path or path.startswith("dbfs:"):
        return  # a cloud URI: the stream reader reports problems itself
    folder = Path(path)
    if not folder.is_dir():
        raise SourceError(f"{setting}: folder {path} does not exist")
    if not any(p.is_file() and not p.name.startswith((".", "_")) for p in folder.iterdir()):
        raise SourceError(f"{setting}: folder {path} contains no files to ingest")


def read_landing_stream(spark: SparkSession, path: str, profile: SourceProfile, schema_location: str) -> DataFrame:
    """New landing files as text lines with their file path: Auto Loader or the file source."""
    if on_databricks():
        reader = (spark.readStream.format("cloudFiles")
                  .option("cloudFiles.format", "text")
                  .option("cloudFiles.schemaLocation", schema_location)
                  .option("cloudFiles.maxFilesPerTrigger", MAX_FILES_PER_BATCH))
    else:
        # Files in sub-folders are data too (Auto Loader reads them as well).
        reader = (spark.readStream.format("text").option("maxFilesPerTrigger", MAX_FILES_PER_BATCH)
                  .option("recursiveFileLookup", "true"))
    if profile.file_glob:
        reader = reader.option("pathGlobFilter", profile.file_glob)
    return reader.load(path).select("value", F.col("_metadata.file_path").alias("_source_file"))


def _query_id(batch: DataFrame) -> str:
    # The streaming query id is kept in the checkpoint: stable across restarts of the same stream.
    return batch.sparkSession.sparkContext.getLocalProperty("sql.streaming.queryId")


def ingest(spark: SparkSession, landing_path: str, profile: SourceProfile, spec: SourceSpec,
           table: str, checkpoint: str) -> int:
    """Append every new landing file's lines to `table`; returns the number of rows added."""
    before = row_count(spark, table)  # before the table is created: nothing to count on a first run
    create_table_if_missing(spark, table, bronze_table_spec(spec))

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        rows = landing.parse_lines(batch.withColumn("_ingested_at", F.current_timestamp()), profile, spec)
        (rows.write.format("delta").mode("append")
         .option("txnAppId", _query_id(batch)).option("txnVersion", batch_id)
         .saveAsTable(table))

    query = (
        read_landing_stream(spark, landing_path, profile, f"{checkpoint}/schema")
        .writeStream.foreachBatch(write_batch)
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    return row_count(spark, table) - before


def run(spark: SparkSession, settings: Settings) -> dict[str, int]:
    """Task `bronze`: ingest new transaction files into bronze.transactions_raw, and the files of
    each optional source in use into bronze.<source>_raw."""
    check_landing_folder(settings.landing_path)
    inputs = [(TRANSACTIONS, settings.landing_path, load_profile(settings.source_profile, TRANSACTIONS),
               settings.tables.transactions_raw)]
    for spec in OPTIONAL_SOURCES:
        if spec.name in settings.sources_in_use:
            path = getattr(settings, f"{spec.name}_path")
            check_landing_folder(path, f"{spec.name}_path")
            profile = load_profile(getattr(settings, f"{spec.name}_profile"), spec, f"{spec.name}_profile")
            inputs.append((spec, path, profile, getattr(settings.tables, f"{spec.name}_raw")))
    ensure_schemas(spark, settings)
    return {table: ingest(spark, path, profile, spec, table, settings.checkpoint(table))
            for spec, path, profile, table in inputs}
