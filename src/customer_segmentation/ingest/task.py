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

from ..core.delta import append_exactly_once, create_table_if_missing, ensure_schemas, process_stream, row_count
from ..core.errors import SourceError
from ..core.settings import Settings, is_cloud_uri, on_databricks
from ..core.tables import table
from . import lines
from .source_profiles import OPTIONAL_SOURCES, TRANSACTIONS, SourceProfile, SourceSpec, load_profile

MAX_FILES_PER_BATCH = 1000


def check_landing_folder(path: str, setting: str = "landing_path") -> None:
    """Fail early, before any table is touched, if the folder is missing or holds no files."""
    if is_cloud_uri(path):
        return  # a cloud URI: the stream reader reports problems itself
    folder = Path(path)
    if not folder.is_dir():
        raise SourceError(f"{setting}: folder {path} does not exist")
    if not any(p.is_file() and not p.name.startswith((".", "_")) for p in folder.iterdir()):
        raise SourceError(f"{setting}: folder {path} contains no files to ingest")


def read_landing_stream(spark: SparkSession, path: str, profile: SourceProfile, schema_location: str) -> DataFrame:
    """New landing files as lines with their file path: Auto Loader or the file source. The text
    source keeps a line's bytes as they are; `lines.parse_lines` decodes them."""
    if on_databricks():
        reader = (spark.readStream.format("cloudFiles")
                  .option("cloudFiles.format", "text")
                  .option("cloudFiles.schemaLocation", schema_location)
                  .option("cloudFiles.maxFilesPerTrigger", MAX_FILES_PER_BATCH))
    else:
        # Files in sub-folders are data too (Auto Loader reads them as well).
        reader = (spark.readStream.format("text").option("maxFilesPerTrigger", MAX_FILES_PER_BATCH)
                  .option("recursiveFileLookup", "true"))
    return (reader.options(**lines.reader_options(profile)).load(path)
            .select("value", F.col("_metadata.file_path").alias("_source_file")))


def ingest(spark: SparkSession, landing_path: str, profile: SourceProfile, spec: SourceSpec,
           table_name: str, checkpoint: str) -> int:
    """Append every new landing file's lines to `table_name`; returns the number of rows added."""
    before = row_count(spark, table_name)  # before the table is created: nothing to count on a first run
    create_table_if_missing(spark, table_name, table(spec.bronze_table).spec())

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        rows = lines.parse_lines(batch.withColumn("_ingested_at", F.current_timestamp()), profile, spec)
        append_exactly_once(rows, table_name, batch, batch_id)

    process_stream(read_landing_stream(spark, landing_path, profile, f"{checkpoint}/schema"), checkpoint, write_batch)
    return row_count(spark, table_name) - before


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
            inputs.append((spec, path, profile, getattr(settings.tables, spec.bronze_table)))
    ensure_schemas(spark, settings)
    return {target: ingest(spark, path, profile, spec, target, settings.checkpoint(target))
            for spec, path, profile, target in inputs}
