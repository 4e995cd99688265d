"""Optional sources: customer attributes, engagement and the product catalogue.

Each is ingested into its own bronze table by the same stream as transactions (`bronze`), and
cleaned here into silver with the same guarantees: every bronze line ends in exactly one of
`silver.<source>` and `silver.<source>_quarantine`, with a reason when rejected. These tables
are small (a row per customer, month or product), so silver is rebuilt from bronze in one
atomic overwrite per run rather than streamed: a rerun gives the same rows.

The rules for every field live in `FIELDS` below: its type, the range it must fall in, the
values it may take, and the **default** a blank value gets. Each default applied is recorded
on the row (`defaults_applied`) and counted per source and field in `silver.source_quality`.

Customers and products describe the latest state: when a key arrives again (a later export),
the latest line is the current one (`is_current`), older ones stay in silver as history.
Engagement rows are monthly activity: gold sums them per customer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (ArrayType, BooleanType, DoubleType, IntegerType, LongType, MapType, StringType,
                               TimestampType)

from .bronze import bronze_table_spec
from .profiles import CUSTOMERS, ENGAGEMENT, PRODUCTS
from .rules import cleaning_rules
from .settings import Settings
from .silver import clean_customer_id, is_blank, reconcile_counts
from .tables import Column as Col
from .tables import TableSpec, create_table_if_missing, overwrite_tables

EDUCATION_LEVELS = ("Secondary", "Vocational", "Bachelor", "Master", "Doctorate")
LOYALTY_TIERS = ("Bronze", "Silver", "Gold", "Platinum")
UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Field:
    """How one canonical field of an optional source is typed, checked and defaulted."""

    name: str
    kind: str                       # key, int, double, month, ordinal, category
    comment: str
    low: float | None = None        # inclusive range for numbers
    high: float | None = None
    levels: tuple[str, ...] = ()    # ordinal: the allowed values, lowest first
    default: str | None = None      # value given to a blank field (None: blank stays null = unknown)
    required: bool = False          # a blank value rejects the line (missing_value)


FIELDS: dict[str, tuple[Field, ...]] = {
    "customers": (
        Field("customer_id", "key", "Customer ID, cleaned as in silver.orders (17850.0 -> 17850)"),
        Field("age", "int", "Age in years; null when unknown (e.g. a business)", 16, 110),
        Field("income", "double", "Yearly income; null when unknown", 0, 10_000_000),
        Field("education", "ordinal", "Highest education: " + " < ".join(EDUCATION_LEVELS) + "; null when unknown",
              levels=EDUCATION_LEVELS),
        Field("loyalty_tier", "ordinal", "Loyalty tier: " + " < ".join(LOYALTY_TIERS) + "; blank becomes "
              + LOYALTY_TIERS[0] + " (the lowest tier)", levels=LOYALTY_TIERS, default=LOYALTY_TIERS[0]),
        Field("gender", "category", f"Gender as given; blank becomes {UNKNOWN}", default=UNKNOWN),
        Field("marital_status", "category", f"Marital status as given; blank becomes {UNKNOWN}", default=UNKNOWN),
        Field("region", "category", f"Region as given; blank becomes {UNKNOWN}", default=UNKNOWN),
    ),
    "engagement": (
        Field("customer_id", "key", "Customer ID, cleaned as in silver.orders"),
        Field("month", "month", "Month of the activity, yyyy-MM", required=True),
        Field("emails_opened", "int", "Marketing emails opened in the month; blank becomes 0", 0, 100_000, default="0"),
        Field("emails_clicked", "int", "Marketing emails clicked in the month; blank becomes 0", 0, 100_000,
              default="0"),
        Field("sessions", "int", "Web sessions in the month; blank becomes 0", 0, 1_000_000, default="0"),
        Field("page_views", "int", "Pages viewed in the month; blank becomes 0", 0, 10_000_000, default="0"),
        Field("session_minutes", "double", "Minutes spent in sessions in the month; blank becomes 0", 0,
              10_000_000, default="0"),
    ),
    "products": (
        Field("stock_code", "key", "Product code as in silver.orders.stock_code"),
        Field("category", "category", "Product category", required=True),
        Field("unit_cost", "double", "What one unit costs the shop; null when unknown (no margin then)", 0, 1_000_000),
    ),
}
SPECS = {"customers": CUSTOMERS, "engagement": ENGAGEMENT, "products": PRODUCTS}
# Latest line per key is current; engagement keeps every month.
CURRENT_KEY = {"customers": ("customer_id",), "products": ("stock_code",)}
REJECT_REASONS = ("malformed_line", "missing_value", "invalid_number", "invalid_month", "invalid_value",
                  "out_of_range", "duplicate_line")
TYPES = {"key": StringType(), "int": IntegerType(), "double": DoubleType(), "month": StringType(),
         "ordinal": StringType(), "category": StringType()}


def silver_spec(source: str) -> TableSpec:
    lineage = [Col("defaults_applied", ArrayType(StringType()), "Fields that were blank and got their default"),
               Col("_source_file", StringType(), "Landing file the line came from"),
               Col("_ingested_at", TimestampType(), "When the line was ingested"),
               Col("_line_id", StringType(), "Identifier of the bronze line")]
    current = ([Col("is_current", BooleanType(), "The latest line for this key (earlier lines are history)")]
               if source in CURRENT_KEY else [])
    return TableSpec(
        comment=f"Valid {source} lines from bronze, typed, with defaults applied and recorded.",
        columns=tuple(Col(f.name, TYPES[f.kind], f.comment) for f in FIELDS[source]) + tuple(current + lineage))


def quarantine_spec(source: str) -> TableSpec:
    return TableSpec(
        comment=f"Every bronze {source} line that is not valid, unchanged, with the reason it was rejected.",
        columns=bronze_table_spec(SPECS[source]).columns + (
            Col("reject_reason", StringType(), "Why the line was rejected: " + ", ".join(REJECT_REASONS)),
            Col("reject_detail", StringType(), "The specific problem: which field and value")))


SOURCE_QUALITY = TableSpec(
    comment="One row per optional source and run: lines in, out, rejected by reason, and defaults applied.",
    columns=(
        Col("source", StringType(), "customers, engagement or products"),
        Col("run_id", StringType(), "Job run that cleaned the source"),
        Col("processed_at", TimestampType(), "When"),
        Col("lines_in", LongType(), "Bronze lines"),
        Col("lines_out", LongType(), "Lines in silver.<source>"),
        Col("lines_rejected", LongType(), "Lines in silver.<source>_quarantine"),
        Col("rejects_by_reason", MapType(StringType(), LongType()), "Rejected lines per reject_reason"),
        Col("defaults_applied", MapType(StringType(), LongType()), "Lines that got each field's default"),
    ))


def _typed(field: Field, text: Column) -> tuple[Column, Column | None, Column | None]:
    """(typed value, 'invalid' condition, 'out of range' condition) of a trimmed, non-blank text."""
    if field.kind == "int":
        value = F.regexp_replace(text, r"\.0+$", "").try_cast("int")
    elif field.kind == "double":
        value = text.try_cast("double")
    elif field.kind == "month":
        parsed = F.try_to_timestamp(text, F.lit("yyyy-MM"))
        return F.date_format(parsed, "yyyy-MM"), parsed.isNull(), None
    elif field.kind == "ordinal":
        match = None
        for level in reversed(field.levels):
            match = F.when(F.lower(text) == level.lower(), F.lit(level)).otherwise(match)
        return match, match.isNull(), None
    else:
        return text, None, None
    out_of_range = (value < F.lit(field.low)) | (value > F.lit(field.high))
    return value, value.isNull() | F.isnan(value.cast("double")), out_of_range


def classify(bronze: DataFrame, source: str) -> DataFrame:
    """Type every bronze line of `source`, apply defaults, and give it a reject reason (null = valid).

    Pure transform: adds `_v_<field>` typed columns, `_defaults`, `reject_reason`, `reject_detail`.
    """
    rules = cleaning_rules()
    checks: list[tuple[str, Column, Column]] = [
        ("malformed_line", F.col("_malformed").isNotNull(), F.col("_malformed"))]
    typed, defaults = {}, []
    for field in FIELDS[source]:
        raw = F.col(field.name)
        text = F.trim(raw)
        if field.kind == "key":
            key = clean_customer_id(raw, rules) if field.name == "customer_id" else F.nullif(text, F.lit(""))
            checks.insert(1, ("missing_value", key.isNull(), F.lit(f"{field.name} is empty")))
            typed[field.name] = key
            continue
        value, invalid, out_of_range = _typed(field, text)
        blank = is_blank(raw)
        if field.required:
            checks.append(("missing_value", blank, F.lit(f"{field.name} is empty")))
        if invalid is not None:
            reason = {"int": "invalid_number", "double": "invalid_number", "month": "invalid_month"}.get(
                field.kind, "invalid_value")
            allowed = f" (allowed: {', '.join(field.levels)})" if field.levels else ""
            checks.append((reason, ~blank & invalid,
                           F.format_string(f"{field.name} %s is not valid{allowed}", F.to_json(F.array(raw)))))
        if out_of_range is not None:
            checks.append(("out_of_range", ~blank & out_of_range,
                           F.format_string(f"{field.name} %s is outside {field.low:g}..{field.high:g}", text)))
        if field.default is not None:
            default_value, _, _ = _typed(field, F.lit(field.default))
            value = F.when(blank, default_value).otherwise(value)
            defaults.append(F.when(blank, F.lit(field.name)))
        else:
            value = F.when(~blank, value)
        typed[field.name] = value
    reason, detail = F.lit(None).cast("string"), F.lit(None).cast("string")
    for code, failed, why in reversed(checks):
        reason = F.when(failed, F.lit(code)).otherwise(reason)
        detail = F.when(failed, why).otherwise(detail)
    content = F.sha2(F.concat_ws("\u001f", *[F.coalesce(F.col(c), F.lit("\u0000")) for c in SPECS[source].columns]),
                     256)
    return bronze.select(
        "*", *[v.alias(f"_v_{name}") for name, v in typed.items()],
        (F.filter(F.array(*defaults), lambda d: d.isNotNull()) if defaults else F.array().cast("array<string>"))
        .alias("_defaults"),
        content.alias("_content_hash"), reason.alias("reject_reason"), detail.alias("reject_detail"))


def mark_duplicates_and_current(classified: DataFrame, source: str) -> DataFrame:
    """Exact repeats of a valid line are duplicates (the first is kept); the latest line per key is current."""
    valid = F.col("reject_reason").isNull()
    first = Window.partitionBy("_content_hash", valid).orderBy("_ingested_at", "_source_file", "_line_id")
    marked = (classified.withColumn("_occurrence", F.row_number().over(first))
              .withColumn("_first_file", F.first("_source_file").over(first)))
    repeated = valid & (F.col("_occurrence") > 1)
    marked = (marked
              .withColumn("reject_detail", F.when(repeated, F.concat(F.lit("exact duplicate of a line kept from "),
                                                                      F.col("_first_file")))
                          .otherwise(F.col("reject_detail")))
              .withColumn("reject_reason", F.when(repeated, F.lit("duplicate_line")).otherwise(F.col("reject_reason")))
              .drop("_occurrence", "_first_file"))
    if source not in CURRENT_KEY:
        return marked
    keys = [F.col(f"_v_{k}") for k in CURRENT_KEY[source]]
    latest = Window.partitionBy(*keys, F.col("reject_reason").isNull()).orderBy(
        F.desc("_ingested_at"), F.desc("_source_file"), F.desc("_raw_line"))
    return marked.withColumn("_is_current", F.col("reject_reason").isNull() & (F.row_number().over(latest) == 1))


def to_silver(marked: DataFrame, source: str) -> DataFrame:
    spec = silver_spec(source)
    columns = [F.col(f"_v_{f.name}").cast(TYPES[f.kind]).alias(f.name) for f in FIELDS[source]]
    if source in CURRENT_KEY:
        columns.append(F.col("_is_current").alias("is_current"))
    columns += [F.col("_defaults").alias("defaults_applied"), "_source_file", "_ingested_at", "_line_id"]
    return marked.where(F.col("reject_reason").isNull()).select(*columns).select(*spec.names)


def to_quarantine(marked: DataFrame, source: str) -> DataFrame:
    return marked.where(F.col("reject_reason").isNotNull()).select(*quarantine_spec(source).names)


def quality_row(marked: DataFrame, source: str, run_id: str) -> DataFrame:
    rejects = {r[0]: r[1] for r in marked.groupBy("reject_reason").count().collect() if r[0] is not None}
    total = marked.count()
    defaults = {r[0]: r[1] for r in marked.where(F.col("reject_reason").isNull())
                .select(F.explode("_defaults")).groupBy("col").count().collect()}
    row = [(source, run_id, dt.datetime.now(dt.timezone.utc), total,
            total - sum(rejects.values()), sum(rejects.values()), rejects, defaults)]
    return marked.sparkSession.createDataFrame(row, SOURCE_QUALITY.schema)


def clean_source(spark: SparkSession, source: str, bronze_table: str, silver_table: str, quarantine_table: str,
                 quality_table: str, run_id: str) -> dict[str, int]:
    """Rebuild silver and quarantine of one optional source from its bronze table, then reconcile."""
    marked = mark_duplicates_and_current(classify(spark.table(bronze_table), source), source).localCheckpoint()
    written = overwrite_tables(spark, {silver_table: (to_silver(marked, source), silver_spec(source)),
                                       quarantine_table: (to_quarantine(marked, source), quarantine_spec(source))})
    create_table_if_missing(spark, quality_table, SOURCE_QUALITY)
    quality_row(marked, source, run_id).write.format("delta").mode("append").saveAsTable(quality_table)
    reconcile_counts(spark, bronze_table, silver_table, quarantine_table)
    return written


def run(spark: SparkSession, settings: Settings) -> dict[str, int]:
    """Part of task `silver`: clean each optional source in use."""
    tables, written = settings.tables, {}
    for source in settings.sources_in_use:
        written.update(clean_source(spark, source, getattr(tables, f"{source}_raw"), getattr(tables, source),
                                    getattr(tables, f"{source}_quarantine"), tables.source_quality,
                                    settings.run_id))
    return written
