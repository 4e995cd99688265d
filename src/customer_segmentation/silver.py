"""Silver: typed, cleaned, de-duplicated order lines, and a quarantine for every other line.

Every bronze line lands in exactly one of `silver.orders` and `silver.orders_quarantine`.
Bronze is read as a Delta stream (checkpointed), so each run handles only new lines; each
micro-batch is written with Delta's idempotent-write options, so a batch replayed after a
crash changes nothing. A line is a duplicate only if its content equals an earlier line with a
different identity, which keeps a replayed batch from calling its own lines duplicates.
"""

from __future__ import annotations

import datetime as dt

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (BooleanType, DateType, DecimalType, IntegerType, LongType, MapType, StringType,
                               TimestampType)

from . import landing
from .bronze import bronze_table_spec
from .errors import PipelineError
from .profiles import TRANSACTIONS, SourceProfile, load_profile
from .rules import CleaningRules, cleaning_rules
from .settings import Settings
from .tables import Column as Col
from .tables import TableSpec, conform, create_table_if_missing, ensure_schemas, row_counts, table_version

PRICE = DecimalType(18, 4)
AMOUNT = DecimalType(24, 4)
MAX_BRONZE_FILES_PER_BATCH = 200

# Reject reasons, in the order they are checked: a line gets the first that applies.
REJECT_REASONS = (
    "malformed_line", "missing_value", "invalid_quantity", "invalid_price", "invalid_date",
    "zero_quantity", "non_positive_price", "absurd_quantity", "absurd_price", "implausible_date",
    "duplicate_line",
)

ORDERS = TableSpec(
    comment="Valid order lines, one row per line: typed and normalised, cancellations and returns kept "
            "and flagged. Lines without a customer are valid sales (guest checkouts).",
    columns=(
        Col("invoice_no", StringType(), "Invoice number (derived as <customer>-<yyyyMMdd> for layouts without one)"),
        Col("stock_code", StringType(), "Product or service code (null if the layout has none)"),
        Col("description", StringType(), "Product description"),
        Col("quantity", IntegerType(), "Units on the line; negative for cancellations and returns"),
        Col("invoice_timestamp", TimestampType(), "When the invoice was issued"),
        Col("invoice_date", DateType(), "Calendar day of the invoice"),
        Col("unit_price", PRICE, "Price per unit in the shop's currency (GBP for the UCI data)"),
        Col("line_amount", AMOUNT, "quantity x unit_price; negative for cancellations and returns"),
        Col("customer_id", StringType(), "Customer ID as a clean string (17850.0 -> 17850); null for guests"),
        Col("country", StringType(), "Customer country ('Unknown' when the layout has none)"),
        Col("is_cancellation", BooleanType(), "Cancellation or return: invoice starting with C, or negative quantity"),
        Col("is_product", BooleanType(), "Goods (true) or a service, fee or bookkeeping code such as postage (false)"),
        Col("has_customer", BooleanType(), "The line carries a customer ID"),
        Col("_source_file", StringType(), "Landing file the line came from"),
        Col("_ingested_at", TimestampType(), "When the line was ingested into bronze"),
        Col("_line_id", StringType(), "Identifier of the bronze line"),
        Col("_content_hash", StringType(), "Hash of the line's fields, used to find exact duplicates"),
    ),
    # What queries filter orders on (Delta keeps no statistics of booleans); not the free text,
    # file paths, line ids or hashes.
    stats_columns=("invoice_no", "stock_code", "quantity", "invoice_timestamp", "invoice_date", "unit_price",
                   "line_amount", "customer_id", "country", "_ingested_at"),
)


def quarantine_spec() -> TableSpec:
    bronze = bronze_table_spec(TRANSACTIONS)
    return TableSpec(
        comment="Every bronze line that is not a valid order line, unchanged, with the reason it was rejected.",
        columns=bronze.columns + (
            Col("reject_reason", StringType(), "Why the line was rejected: " + ", ".join(REJECT_REASONS)),
            Col("reject_detail", StringType(), "The specific problem, e.g. which field and value"),
        ),
    )


QUALITY_LOG = TableSpec(
    comment="One row per silver micro-batch: lines in, lines out and rejects by reason.",
    columns=(
        Col("run_id", StringType(), "Job run that processed the batch"),
        Col("batch_id", LongType(), "Micro-batch number of the bronze-to-silver stream"),
        Col("processed_at", TimestampType(), "When the batch was processed"),
        Col("lines_in", LongType(), "Bronze lines in the batch"),
        Col("lines_out", LongType(), "Lines written to silver.orders"),
        Col("lines_rejected", LongType(), "Lines written to silver.orders_quarantine"),
        Col("rejects_by_reason", MapType(StringType(), LongType()), "Rejected lines per reject_reason"),
    ),
)


def is_blank(column: Column) -> Column:
    return column.isNull() | (F.trim(column) == "")


def clean_customer_id(raw: Column, rules: CleaningRules) -> Column:
    """`17850.0` -> `17850`; empty, `nan`, `none`, `n/a` and the like -> null."""
    trimmed = F.trim(raw)
    missing = trimmed.isNull() | F.lower(trimmed).isin(*rules.missing_customer_tokens)
    integral = F.regexp_extract(trimmed, r"^(\d+)\.0+$", 1)
    return F.when(missing, F.lit(None).cast("string")).when(integral != "", integral).otherwise(trimmed)


def is_product_code(code: Column, rules: CleaningRules) -> Column:
    upper = F.upper(F.trim(code))
    service = upper.isin(*rules.non_product_codes)
    for prefix in rules.non_product_prefixes:
        service = service | upper.startswith(prefix)
    return code.isNull() | ~service


def parse_timestamp(raw: Column, formats: tuple[str, ...]) -> Column:
    trimmed = F.trim(raw)
    return F.coalesce(*[F.try_to_timestamp(trimmed, F.lit(fmt)) for fmt in formats])


def content_hash(df: DataFrame) -> Column:
    """Exact-duplicate key: every canonical field as it arrived (null and empty kept apart)."""
    return F.sha2(F.concat_ws("\u001f", *[F.coalesce(F.col(c), F.lit("\u0000")) for c in TRANSACTIONS.columns]), 256)


def classify(bronze: DataFrame, profile: SourceProfile, settings: Settings, rules: CleaningRules) -> DataFrame:
    """Type every bronze line and give it a reject reason (null = valid), duplicates aside.

    Pure transform: the bronze columns stay as they are, typed columns are added next to them.
    """
    # In three projections: the parsed values, then the reject reason, then the typed columns. The
    # reason and its detail test the parsed values a dozen times and every typed column tests the
    # reason; Spark does not merge a projection into the next when that would repeat an expensive
    # expression, so each is computed once per line (as one projection, 3.5 times slower).
    quantity_text = F.trim("quantity")
    uses_amount = profile.source_for("unit_price") is None
    price_text = F.trim("line_amount" if uses_amount else "unit_price")
    parsed = bronze.select(
        "*",
        F.when(quantity_text.rlike(r"^[+-]?\d{1,18}(\.0+)?$"),
               F.regexp_replace(quantity_text, r"\.0+$", "").cast("bigint")).alias("__quantity"),
        price_text.try_cast("decimal(30,6)").alias("__price_number"),
        parse_timestamp(F.col("invoice_date"), profile.timestamp_formats).alias("__timestamp"),
        clean_customer_id(F.col("customer_id"), rules).alias("__customer_id"),
    )
    quantity_big, price_number, timestamp, customer = (
        F.col(c) for c in ("__quantity", "__price_number", "__timestamp", "__customer_id"))
    if uses_amount:  # the layout gives an amount per line: unit price = amount / quantity
        amount = price_number
        unit_price = F.when(quantity_big != 0, F.round(amount / quantity_big, 4))
    else:
        unit_price = F.round(price_number, 4)
        amount = unit_price * quantity_big
    has_invoice = profile.source_for("invoice_no") is not None
    invoice = (F.trim("invoice_no") if has_invoice else
               F.concat_ws("-", F.coalesce(customer, F.lit("guest")), F.date_format(timestamp, "yyyyMMdd")))
    is_cancellation = F.upper(invoice).startswith("C") | (quantity_big < 0)
    derived = parsed.select("*", unit_price.alias("__unit_price"), amount.alias("__amount"),
                            invoice.alias("__invoice_no"), is_cancellation.alias("__is_cancellation"))
    unit_price, amount, invoice, is_cancellation = (
        F.col(c) for c in ("__unit_price", "__amount", "__invoice_no", "__is_cancellation"))
    price_label = "amount" if uses_amount else "unit price"
    source = {c: profile.source_for(c) for c in TRANSACTIONS.columns}

    required = [c for c in ("invoice_no", "stock_code", "quantity", "invoice_date") if source[c]]
    required.append("line_amount" if uses_amount else "unit_price")
    missing = None
    for column in reversed(required):
        missing = F.when(is_blank(F.col(column)), F.lit(f"{source[column]} is empty")).otherwise(missing)
    future_limit = F.date_add(F.to_date("_ingested_at"), rules.future_tolerance_days)
    reason_checks: list[tuple[str, Column, Column]] = [
        ("malformed_line", F.col("_malformed").isNotNull(), F.col("_malformed")),
        ("missing_value", missing.isNotNull(), missing),
        ("invalid_quantity", quantity_big.isNull(),
         F.format_string(f"{source['quantity']} %s is not a whole number", F.to_json(F.array("quantity")))),
        ("invalid_price", price_number.isNull(),
         F.format_string(f"{source['line_amount' if uses_amount else 'unit_price']} %s is not a number",
                         F.to_json(F.array(F.col("line_amount" if uses_amount else "unit_price"))))),
        ("invalid_date", timestamp.isNull(),
         F.format_string(f"{source['invoice_date']} %s does not match %s", F.to_json(F.array("invoice_date")),
                         F.lit(" or ".join(profile.timestamp_formats)))),
        ("zero_quantity", quantity_big == 0, F.lit("quantity is 0")),
        ("non_positive_price", unit_price <= 0,
         F.when(unit_price < 0, F.format_string(f"negative {price_label} %s (a write-off, not an order)", price_text))
         .when(is_cancellation, F.lit(f"{price_label} 0 on a return or stock adjustment: no value moved"))
         .otherwise(F.lit(f"{price_label} 0 on a sale"))),
        ("absurd_quantity", F.abs(quantity_big) > F.lit(settings.max_abs_quantity),
         F.format_string("quantity %d is beyond the limit of %,d (setting max_abs_quantity)",
                         quantity_big, F.lit(int(settings.max_abs_quantity)))),
        ("absurd_price", unit_price > F.lit(settings.max_unit_price),
         F.format_string("unit price %s is beyond the limit of %,d (setting max_unit_price)",
                         unit_price.cast("string"), F.lit(int(settings.max_unit_price)))),
        ("implausible_date", (timestamp < F.lit(rules.earliest_plausible_date)) | (F.to_date(timestamp) > future_limit),
         F.format_string("invoice date %s is before %s or after the day it was ingested",
                         F.date_format(timestamp, "yyyy-MM-dd"), F.lit(rules.earliest_plausible_date.isoformat()))),
    ]
    reason, detail = F.lit(None).cast("string"), F.lit(None).cast("string")
    for code, failed, why in reversed(reason_checks):
        reason = F.when(failed, F.lit(code)).otherwise(reason)
        detail = F.when(failed, why).otherwise(detail)
    judged = derived.select("*", reason.alias("reject_reason"), detail.alias("reject_detail"))

    typed_valid = F.col("reject_reason").isNull()
    return judged.select(
        *bronze.columns,
        F.when(typed_valid, invoice).alias("_invoice_no"),
        F.when(typed_valid, F.trim("stock_code")).alias("_stock_code"),
        F.when(typed_valid, F.trim("description")).alias("_description"),
        F.when(typed_valid, quantity_big.cast("int")).alias("_quantity"),
        F.when(typed_valid, timestamp).alias("_invoice_timestamp"),
        F.when(typed_valid, unit_price.cast(PRICE)).alias("_unit_price"),
        F.when(typed_valid, amount.cast(AMOUNT)).alias("_line_amount"),
        customer.alias("_customer_id"),
        F.coalesce(F.nullif(F.trim("country"), F.lit("")), F.lit("Unknown")).alias("_country"),
        is_cancellation.alias("_is_cancellation"),
        is_product_code(F.col("stock_code"), rules).alias("_is_product"),
        content_hash(bronze).alias("_content_hash"),
        "reject_reason",
        "reject_detail",
    )


def mark_duplicates(classified: DataFrame, existing_orders: DataFrame) -> DataFrame:
    """Reject valid lines that repeat an earlier valid line exactly (in this batch or already in silver).

    Earlier means: already in silver, else first by ingestion time, file and line id.
    `existing_orders` needs `_content_hash`, `_line_id` and `_source_file`.
    """
    first_seen = (existing_orders.select(
        "_content_hash", F.col("_line_id").alias("_seen_line_id"), F.col("_source_file").alias("_seen_file"))
        .dropDuplicates(["_content_hash"]))
    valid = F.col("reject_reason").isNull()
    # Valid lines first within a hash, so a line's occurrence counts only valid lines before it.
    # The window before the join, partitioned by the hash alone: its sort then also serves the
    # join, and the batch is shuffled and sorted once.
    order = Window.partitionBy("_content_hash").orderBy(valid.desc(), "_ingested_at", "_source_file", "_line_id")
    marked = (classified
              .select("*", F.row_number().over(order).alias("_occurrence"),
                      F.first("_source_file").over(order).alias("_first_file"))
              .join(first_seen, "_content_hash", "left"))
    in_silver = valid & F.col("_seen_line_id").isNotNull() & (F.col("_seen_line_id") != F.col("_line_id"))
    repeated = valid & F.col("_seen_line_id").isNull() & (F.col("_occurrence") > 1)
    return (marked
            # The same words whether the kept line came in this batch or an earlier one, so
            # landing files in batches gives the same quarantine as landing them at once.
            .withColumn("reject_detail",
                        F.when(in_silver, F.concat(F.lit("exact duplicate of a line kept from "), F.col("_seen_file")))
                        .when(repeated, F.concat(F.lit("exact duplicate of a line kept from "), F.col("_first_file")))
                        .otherwise(F.col("reject_detail")))
            .withColumn("reject_reason", F.when(in_silver | repeated, F.lit("duplicate_line"))
                        .otherwise(F.col("reject_reason")))
            .drop("_seen_line_id", "_seen_file", "_occurrence", "_first_file"))


def to_orders(marked: DataFrame) -> DataFrame:
    valid = marked.where(F.col("reject_reason").isNull())
    return conform(valid.select(
        F.col("_invoice_no").alias("invoice_no"),
        F.col("_stock_code").alias("stock_code"),
        F.col("_description").alias("description"),
        F.col("_quantity").alias("quantity"),
        F.col("_invoice_timestamp").alias("invoice_timestamp"),
        F.to_date("_invoice_timestamp").alias("invoice_date"),
        F.col("_unit_price").alias("unit_price"),
        F.col("_line_amount").alias("line_amount"),
        F.col("_customer_id").alias("customer_id"),
        F.col("_country").alias("country"),
        F.col("_is_cancellation").alias("is_cancellation"),
        F.col("_is_product").alias("is_product"),
        F.col("_customer_id").isNotNull().alias("has_customer"),
        "_source_file", "_ingested_at", "_line_id", "_content_hash",
    ), ORDERS)


def to_quarantine(marked: DataFrame) -> DataFrame:
    return conform(marked.where(F.col("reject_reason").isNotNull()), quarantine_spec())


def quality_row(marked: DataFrame, run_id: str, batch_id: int) -> DataFrame:
    counts = marked.groupBy("reject_reason").count().collect()
    rejects = {r["reject_reason"]: r["count"] for r in counts if r["reject_reason"] is not None}
    total = sum(r["count"] for r in counts)
    spark = marked.sparkSession
    row = [(run_id, batch_id, dt.datetime.now(dt.timezone.utc), total,
            total - sum(rejects.values()), sum(rejects.values()), rejects)]
    return spark.createDataFrame(row, QUALITY_LOG.schema)


def preview_orders(spark: SparkSession, settings: Settings) -> DataFrame:
    """The valid order lines the landing folder would give, computed without writing anything."""
    profile = load_profile(settings.source_profile)
    lines = (spark.read.option("recursiveFileLookup", "true").text(settings.landing_path)
             .select("value", F.col("_metadata.file_path").alias("_source_file"))
             .withColumn("_ingested_at", F.current_timestamp()))
    classified = classify(landing.parse_lines(lines, profile, TRANSACTIONS), profile, settings, cleaning_rules())
    return classified.where("reject_reason IS NULL").select(F.to_date("_invoice_timestamp").alias("invoice_date"))


def run(spark: SparkSession, settings: Settings) -> dict[str, int]:
    """Task `silver`: new bronze lines -> silver.orders or silver.orders_quarantine."""
    tables = settings.tables
    profile = load_profile(settings.source_profile)
    rules = cleaning_rules()
    before = row_counts(spark, [tables.orders, tables.orders_quarantine])
    ensure_schemas(spark, settings)
    create_table_if_missing(spark, tables.orders, ORDERS)
    create_table_if_missing(spark, tables.orders_quarantine, quarantine_spec())
    create_table_if_missing(spark, tables.quality_log, QUALITY_LOG)

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        app_id = batch.sparkSession.sparkContext.getLocalProperty("sql.streaming.queryId")
        # Compare with silver as it was before this batch, and classify once: the three writes
        # below must see the same classification. Kept on local disk, not in the heap: at 10M
        # lines the batch is about 3 GB, and in memory it cost three times the garbage collection.
        existing = spark.sql(f"SELECT _content_hash, _line_id, _source_file FROM {tables.orders} "
                             f"VERSION AS OF {table_version(spark, tables.orders)}")
        marked = mark_duplicates(classify(batch, profile, settings, rules), existing).localCheckpoint(
            eager=True, storageLevel=StorageLevel.DISK_ONLY)
        try:
            for rows, table in ((to_orders(marked), tables.orders),
                                (to_quarantine(marked), tables.orders_quarantine),
                                (quality_row(marked, settings.run_id, batch_id), tables.quality_log)):
                (rows.write.format("delta").mode("append")
                 .option("txnAppId", app_id).option("txnVersion", batch_id).saveAsTable(table))
        finally:
            marked.unpersist()

    query = (spark.readStream.option("maxFilesPerTrigger", MAX_BRONZE_FILES_PER_BATCH)
             .table(tables.transactions_raw)
             .writeStream.foreachBatch(write_batch)
             .option("checkpointLocation", settings.checkpoint(tables.orders))
             .trigger(availableNow=True).start())
    query.awaitTermination()
    after = reconcile(spark, settings)
    return {name: after[name] - before.get(name, 0) for name in (tables.orders, tables.orders_quarantine)}


def reconcile(spark: SparkSession, settings: Settings) -> dict[str, int]:
    """Every bronze transaction line is in exactly one of orders and quarantine."""
    tables = settings.tables
    return reconcile_counts(spark, tables.transactions_raw, tables.orders, tables.orders_quarantine)


def reconcile_counts(spark: SparkSession, bronze_table: str, kept_table: str, quarantine_table: str) -> dict[str, int]:
    """Every line of `bronze_table` is in exactly one of `kept_table` and `quarantine_table`;
    anything else is a bug. Returns the three tables' row counts."""
    counts = row_counts(spark, [bronze_table, kept_table, quarantine_table])
    bronze, kept, quarantine = (counts.get(name, 0) for name in (bronze_table, kept_table, quarantine_table))
    if bronze != kept + quarantine:
        raise PipelineError(f"reconciliation failed: {bronze_table} has {bronze:,} lines, {kept_table} {kept:,} "
                            f"+ {quarantine_table} {quarantine:,} = {kept + quarantine:,}")
    return counts
