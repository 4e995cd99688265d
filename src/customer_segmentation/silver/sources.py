"""Optional sources: customer attributes, engagement and the product catalogue.

Each is ingested into its own bronze table by the same stream as transactions (`bronze`), and
cleaned here into silver with the same guarantees: every bronze line ends in exactly one of
`silver.<source>` and `silver.<source>_quarantine`, with a reason when rejected. These tables
are small (a row per customer, month or product), so silver is rebuilt from bronze in one
atomic overwrite per run rather than streamed: a rerun gives the same rows.

The rules for every field are the `check` of its column in core/tables.yaml: its type, the range
it must fall in, the values it may take, and the **default** a blank value gets. Each default applied is recorded
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
from pyspark.sql.types import DataType

from ..core.delta import conform, create_table_if_missing, overwrite_tables
from ..core.rules import cleaning_rules
from ..core.tables import canonical_columns, table
from .cleaning import clean_customer_id, is_blank
from .quarantine import Check, content_hash, first_failure, mark_duplicates, reconcile_counts, rejects_by_reason

# Latest line per key is current; engagement keeps every month.
CURRENT_KEY = {"customers": ("customer_id",), "products": ("stock_code",)}
SOURCE_QUALITY = table("source_quality").spec()


@dataclass(frozen=True)
class Field:
    """How one canonical field of an optional source is typed, checked and defaulted."""

    name: str
    kind: str                       # key, int, double, month, ordinal, category
    type: DataType
    low: float | None = None        # inclusive range for numbers
    high: float | None = None
    levels: tuple[str, ...] = ()    # ordinal: the allowed values, lowest first
    default: str | None = None      # value given to a blank field (None: blank stays null = unknown)
    required: bool = False          # a blank value rejects the line (missing_value)


def fields(source: str) -> tuple[Field, ...]:
    """The checked fields of silver.<source>, from the registry."""
    return tuple(Field(c.name, c.check["kind"], c.type, c.check.get("low"), c.check.get("high"),
                       tuple(c.check.get("levels", ())), c.check.get("default"), bool(c.check.get("required")))
                 for c in table(source).columns if c.check)


def levels(source: str, name: str) -> tuple[str, ...]:
    return next(f.levels for f in fields(source) if f.name == name)


EDUCATION_LEVELS = levels("customers", "education")
LOYALTY_TIERS = levels("customers", "loyalty_tier")
UNKNOWN = next(f.default for f in fields("customers") if f.name == "gender")


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
    checks: list[Check] = [
        ("malformed_line", F.col("_malformed").isNotNull(), F.col("_malformed"))]
    typed, defaults = {}, []
    for field in fields(source):
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
    reason, detail = first_failure(checks)
    content = content_hash(canonical_columns(source))
    return bronze.select(
        "*", *[v.alias(f"_v_{name}") for name, v in typed.items()],
        (F.filter(F.array(*defaults), lambda d: d.isNotNull()) if defaults else F.array().cast("array<string>"))
        .alias("_defaults"),
        content.alias("_content_hash"), reason.alias("reject_reason"), detail.alias("reject_detail"))


def mark_current(marked: DataFrame, source: str) -> DataFrame:
    """The latest valid line per key is current (customers and products describe the latest state)."""
    if source not in CURRENT_KEY:
        return marked
    keys = [F.col(f"_v_{k}") for k in CURRENT_KEY[source]]
    latest = Window.partitionBy(*keys, F.col("reject_reason").isNull()).orderBy(
        F.desc("_ingested_at"), F.desc("_source_file"), F.desc("_raw_line"))
    return marked.withColumn("_is_current", F.col("reject_reason").isNull() & (F.row_number().over(latest) == 1))


def to_silver(marked: DataFrame, source: str) -> DataFrame:
    spec = table(source).spec()
    columns = [F.col(f"_v_{f.name}").alias(f.name) for f in fields(source)]
    if source in CURRENT_KEY:
        columns.append(F.col("_is_current").alias("is_current"))
    columns += [F.col("_defaults").alias("defaults_applied"), "_source_file", "_ingested_at", "_line_id"]
    return conform(marked.where(F.col("reject_reason").isNull()).select(*columns), spec)


def to_quarantine(marked: DataFrame, source: str) -> DataFrame:
    return marked.where(F.col("reject_reason").isNotNull()).select(*table(f"{source}_quarantine").spec().names)


def quality_row(marked: DataFrame, source: str, run_id: str) -> DataFrame:
    total, rejects = rejects_by_reason(marked)
    defaults = {r[0]: r[1] for r in marked.where(F.col("reject_reason").isNull())
                .select(F.explode("_defaults")).groupBy("col").count().collect()}
    # An aware time: Spark stores the instant; a naive one it reads in the driver's local zone.
    row = [(source, run_id, dt.datetime.now(dt.timezone.utc), total,
            total - sum(rejects.values()), sum(rejects.values()), rejects, defaults)]
    return marked.sparkSession.createDataFrame(row, SOURCE_QUALITY.schema)


def clean_source(spark: SparkSession, source: str, bronze_table: str, silver_table: str, quarantine_table: str,
                 quality_table: str, run_id: str) -> dict[str, int]:
    """Rebuild silver and quarantine of one optional source from its bronze table, then reconcile."""
    marked = mark_current(mark_duplicates(classify(spark.table(bronze_table), source)), source).localCheckpoint()
    written = overwrite_tables(spark, {
        silver_table: (to_silver(marked, source), table(source).spec()),
        quarantine_table: (to_quarantine(marked, source), table(f"{source}_quarantine").spec())})
    create_table_if_missing(spark, quality_table, SOURCE_QUALITY)
    quality_row(marked, source, run_id).write.format("delta").mode("append").saveAsTable(quality_table)
    reconcile_counts(spark, bronze_table, silver_table, quarantine_table)
    return written
