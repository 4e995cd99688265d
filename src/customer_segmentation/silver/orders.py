"""Silver orders: typed, cleaned, de-duplicated order lines, and the quarantine of every other line.

Pure transforms of a batch of bronze lines (the task in `task.py` streams them): `classify` types
every line and gives it the first reject reason that applies, `judge` rejects exact repeats of lines
kept before or earlier in the batch, and `to_orders` / `to_quarantine` write its verdicts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import NamedTuple

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ..core.delta import conform
from ..core.rules import CleaningRules, cleaning_rules
from ..core.settings import Settings
from ..core.tables import table
from ..ingest import lines
from ..ingest.source_profiles import TRANSACTIONS, SourceProfile, load_profile
from .cleaning import clean_customer_id, is_blank, is_product_code, parse_timestamp
from .quarantine import (
    Check,
    content_hash,
    content_key,
    first_failure,
    mark_duplicates,
    mark_redelivered_files,
    reject_detail,
    rejects_by_reason,
)

ORDERS = table("orders").spec()
QUARANTINE = table("orders_quarantine").spec()
QUALITY_LOG = table("quality_log").spec()
PRICE, AMOUNT = (table("orders").column(name).type for name in ("unit_price", "line_amount"))
# Contents shared by more lines than this (sent to every task as 64-bit hashes): every line of the
# batch is ordered within its content instead.
MAX_SHARED_CONTENTS = 1_000_000
# Reject reasons, in the order they are checked: a line gets the first that applies.
REJECT_REASONS = table("orders_quarantine").column("reject_reason").values


def classify(bronze: DataFrame, profile: SourceProfile, settings: Settings, rules: CleaningRules) -> DataFrame:
    """Type every bronze line and give it a reject reason (null = valid), duplicates aside.

    Pure transform: the bronze columns stay as they are, typed columns are added next to them.
    Lines that come with their `_content_hash` (as `judge` gives them) keep it. `reject_detail` is
    left null: `with_reject_details` words it for the rejected lines alone. That code runs on a few
    lines in a hundred; in the pass over every line it made the JIT compile the pass's one large
    method again for each kind of reject it met for the first time (BENCHMARKS.md).
    """
    parsed, checks = _parsed(bronze, profile, settings, rules)
    reason, _ = first_failure(checks)
    judged = parsed.select("*", reason.alias("reject_reason"), F.lit(None).cast("string").alias("reject_detail"))

    typed_valid = F.col("reject_reason").isNull()
    invoice, quantity_big, timestamp, unit_price, amount, customer, is_cancellation = (
        F.col(c) for c in ("__invoice_no", "__quantity", "__timestamp", "__unit_price", "__amount", "__customer_id",
                           "__is_cancellation"))
    return judged.select(
        *[c for c in bronze.columns if c != "_content_hash"],
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
        (F.col("_content_hash") if "_content_hash" in bronze.columns else _content_hash(profile))
        .alias("_content_hash"),
        "reject_reason",
        "reject_detail",
    )


def with_reject_details(classified: DataFrame, profile: SourceProfile, settings: Settings,
                        rules: CleaningRules) -> DataFrame:
    """`classified` (lines of `classify`, their raw columns kept) with the `reject_detail` of each line
    that `classify` rejected, worded from its raw values again; other details kept as they are."""
    parsed, checks = _parsed(classified, profile, settings, rules)
    detail = F.coalesce("reject_detail", reject_detail(F.col("reject_reason"), checks))
    return parsed.select(*[detail.alias(c) if c == "reject_detail" else c for c in classified.columns])


def _parsed(bronze: DataFrame, profile: SourceProfile, settings: Settings,
            rules: CleaningRules) -> tuple[DataFrame, list[Check]]:
    """The bronze lines with their values parsed (columns `__<name>`), and the checks of the reject
    reasons over them, in the registry's order."""
    # In projections: the parsed values, then what is derived from them (then, in `classify`, the
    # reason and the typed columns). The reason tests the parsed values a dozen times and every typed
    # column tests the reason; Spark does not merge a projection into the next when that would repeat
    # an expensive expression, so each is computed once per line (as one projection, 3.5 times slower).
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
    unit_price, is_cancellation = F.col("__unit_price"), F.col("__is_cancellation")
    price_label = "amount" if uses_amount else "unit price"
    source = {c: profile.source_for(c) for c in TRANSACTIONS.columns}

    required = [c for c in ("invoice_no", "stock_code", "quantity", "invoice_date") if source[c]]
    required.append("line_amount" if uses_amount else "unit_price")
    missing = None
    for column in reversed(required):
        missing = F.when(is_blank(F.col(column)), F.lit(f"{source[column]} is empty")).otherwise(missing)
    future_limit = F.date_add(F.to_date("_ingested_at"), rules.future_tolerance_days)
    checks: list[Check] = [
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
    assert [code for code, _, _ in checks] == list(REJECT_REASONS[:-1]), "checks in the registry's order"
    return derived, checks


class Verdicts(NamedTuple):
    """A batch's lines judged: the valid ones and the rejected ones, each with `classify`'s columns."""
    kept: DataFrame
    rejected: DataFrame
    lines: int  # in the batch


def judge(bronze: DataFrame, existing: DataFrame, profile: SourceProfile, settings: Settings, rules: CleaningRules,
          hold: Callable[[DataFrame], DataFrame], max_shared: int = MAX_SHARED_CONTENTS) -> Verdicts:
    """Every bronze line classified (`classify`) and duplicates rejected (`existing`: the lines
    already kept). With the layout's line identity, a line repeating a line kept before or earlier in
    `bronze` is a duplicate (`quarantine.mark_duplicates`); without, identical lines are separate
    purchases and only a file delivered again is (`quarantine.mark_redelivered_files`).

    `hold` computes a frame and keeps it for the reads after it (the task: a local checkpoint on
    disk). Every line is read from bronze, classified and held once. Repeats are few, so the batch is
    not shuffled to find them: one aggregation of a 64-bit key of each line's content, and
    the kept lines with a key of the batch's (held), find the contents that more than one line
    may share. Only the lines with those are ordered within their content, read back from the held
    lines with the rejected ones and held again, so the quarantine reads a small frame; the rejected
    lines get their details there (`with_reject_details`). A collision of the 64-bit hashes only
    adds lines to those compared exactly. With more than `max_shared` such contents (a batch
    delivered again), every line is ordered within its content before it is held.
    """
    undecided = F.lit(False)  # a line whose verdict waits for its content's other lines
    revisit = False  # whether the undecided and rejected lines are ordered within their content
    kept_sharing = None  # the kept lines that undecided lines are compared with
    lines_in = None
    if not profile.key:
        classified = mark_redelivered_files(classify(bronze, profile, settings, rules), existing)
    else:
        # Defined once for the output (classify keeps it) and the key. The kept lines hold only
        # their content hash, so the key is a hash of it; with none kept (a first load) it is a hash
        # of what the content hash hashes, which spares the aggregation's SHA-256 (BENCHMARKS.md).
        bronze = bronze.withColumn("_content_hash", _content_hash(profile))
        first_load = existing.isEmpty()
        key = content_key(TRANSACTIONS.columns, profile.key) if first_load else _key_of("_content_hash")
        # The batch's lines per key, with the batch's line count as one more row: a foreachBatch
        # batch is read whole, every column, even to count it.
        per_key = (bronze.select(key.alias("_key")).rollup("_key")
                   .agg(F.count(F.lit(1)).alias("_lines"), (F.grouping_id() == 1).alias("_batch")))
        shared_in_batch = F.col("_batch") | (F.col("_lines") > 1)
        if first_load:
            per_key = per_key.where(shared_in_batch).localCheckpoint()
        else:  # only the kept lines with a key of the batch can be repeated by it: they alone are compared
            per_key = hold(per_key)
            existing = hold(_kept_with_keys_of(per_key, existing, max_shared))
            kept_keys = existing.select(key.alias("_key"), F.lit(True).alias("_kept")).distinct()
            per_key = (per_key.join(kept_keys, "_key", "left").where(shared_in_batch | F.col("_kept").isNotNull())
                       .localCheckpoint())
        lines_in, shared_contents = per_key.agg(F.coalesce(F.sum(F.when(F.col("_batch"), F.col("_lines"))), F.lit(0)),
                                                F.count_if(~F.col("_batch"))).first()
        shared = per_key.where(~F.col("_batch")).select("_key")
        if shared_contents > max_shared:
            classified = mark_duplicates(classify(bronze, profile, settings, rules), existing)
        else:
            shared = F.broadcast(shared)
            flagged = bronze.join(shared, key == F.col("_key"), "left").select(
                *bronze.columns, F.col("_key").isNotNull().alias("_undecided"))
            classified = classify(flagged, profile, settings, rules)
            undecided, revisit = F.col("_undecided"), True
            if not first_load:
                kept_sharing = existing.join(shared, key == F.col("_key"), "left_semi")
    held = hold(_staged(classified.withColumn("_undecided", undecided)))
    undecided, rejected = F.col("_undecided"), F.col("reject_reason").isNotNull()
    revisited = with_reject_details(held.where(undecided | rejected), profile, settings, rules)
    if revisit:  # a rejected line not undecided shares its content with no line
        revisited = mark_duplicates(revisited, kept_sharing)
    revisited = hold(revisited.drop("_undecided"))
    return Verdicts(kept=held.where(~undecided & ~rejected).drop("_undecided")
                    .unionByName(revisited.where(~rejected)),
                    rejected=revisited.where(rejected), lines=held.count() if lines_in is None else lines_in)


def _kept_with_keys_of(per_key: DataFrame, existing: DataFrame, max_shared: int) -> DataFrame:
    """The kept lines (`existing`) with a key of the batch's (`per_key`): the only ones its lines
    can repeat. The kept lines' keys are read alone first, from `_content_key` (8 bytes a line)
    where silver.orders has it and from the content hash where it was created before it; only if
    some match are the matching lines read whole. A batch of new lines (the daily case) so reads
    one narrow column of silver, not four wide ones (BENCHMARKS.md). Few keys are sent to every
    task, so a small batch shuffles none of the kept lines."""
    stored_key = F.col("_content_key") if "_content_key" in existing.columns else _key_of("_content_hash")

    def sent_to_every_task(keys: DataFrame) -> DataFrame:
        return F.broadcast(keys) if keys.count() <= max_shared else keys

    batch_keys = sent_to_every_task(per_key.where(~F.col("_batch")).select("_key"))
    matched = (existing.select(stored_key.alias("_key")).join(batch_keys, "_key", "left_semi").distinct()
               .localCheckpoint())
    if matched.isEmpty():
        return existing.limit(0)
    return existing.join(sent_to_every_task(matched), stored_key == F.col("_key"), "left_semi")


def _key_of(content_hash: Column | str) -> Column:
    """The 64-bit key of a content hash: a batch's lines and the kept lines (their stored
    `_content_key`) are compared by it, so both must be this one hash."""
    return F.xxhash64(content_hash)


def _content_hash(profile: SourceProfile) -> Column:
    """The duplicate key of a bronze line of `profile`."""
    return content_hash(TRANSACTIONS.columns, profile.key)


# silver.orders' columns computed from another classified column than their `_<name>` or name.
_DERIVED = {"invoice_date": ("_invoice_timestamp", F.to_date), "has_customer": ("_customer_id", Column.isNotNull),
            "_content_key": ("_content_hash", _key_of)}


def _read_by_orders(columns: list[str]) -> dict[str, str]:
    """The classified column each silver.orders column is made from: classify keeps each typed
    value beside the raw one, as `_<name>`; lineage keeps its name."""
    return {name: _DERIVED[name][0] if name in _DERIVED else f"_{name}" if f"_{name}" in columns else name
            for name in ORDERS.names}


def _staged(classified: DataFrame) -> DataFrame:
    """The classified batch as the writes read it: a valid line with only what silver.orders reads
    (its raw text, bytes and fields null), unless it is `_undecided` (it may yet be a duplicate); a
    rejected line with what the quarantine reads too. Held between classifying and writing, it is
    smaller so."""
    orders_reads = set(_read_by_orders(classified.columns).values()) | {"reject_reason", "reject_detail", "_undecided"}
    quarantine_may_read = F.col("reject_reason").isNotNull() | F.col("_undecided")
    return classified.select(*[c if c in orders_reads else F.when(quarantine_may_read, F.col(c)).alias(c)
                               for c in classified.columns if c in orders_reads or c in QUARANTINE.names])


def to_orders(judged: DataFrame) -> DataFrame:
    """The valid lines, as silver.orders rows."""
    def column(name: str, source: str) -> Column:
        return (_DERIVED[name][1](F.col(source)) if name in _DERIVED else F.col(source)).alias(name)

    valid = judged.where(F.col("reject_reason").isNull())
    return conform(valid.select(*[column(*pair) for pair in _read_by_orders(judged.columns).items()]), ORDERS)


def to_quarantine(judged: DataFrame) -> DataFrame:
    return conform(judged.where(F.col("reject_reason").isNotNull()), QUARANTINE)


def quality_row(rejected: DataFrame, lines_in: int, run_id: str, batch_id: int) -> DataFrame:
    """The batch's row of silver.quality_log: `lines_in` bronze lines, of them `rejected`."""
    _, rejects = rejects_by_reason(rejected)
    # An aware time: Spark stores the instant; a naive one it reads in the driver's local zone.
    row = [(run_id, batch_id, dt.datetime.now(dt.timezone.utc), lines_in, lines_in - sum(rejects.values()),
            sum(rejects.values()), rejects)]
    return rejected.sparkSession.createDataFrame(row, QUALITY_LOG.schema)


def preview_orders(spark: SparkSession, settings: Settings) -> DataFrame:
    """Each line of the landing folder with its `invoice_date` if silver would keep it (null if it
    would reject it), computed without writing anything."""
    profile = load_profile(settings.source_profile)
    raw = (spark.read.option("recursiveFileLookup", "true").options(**lines.reader_options(profile))
           .text(settings.landing_path)
           .select("value", F.col("_metadata.file_path").alias("_source_file"))
           .withColumn("_ingested_at", F.current_timestamp()))
    classified = classify(lines.parse_lines(raw, profile, TRANSACTIONS), profile, settings, cleaning_rules())
    # A rejected line's typed columns are null. Not a filter on the reason: Spark pushes it below the
    # projections that compute the reason, inlined into one expression (140 s instead of 20 s over
    # 10M lines; BENCHMARKS.md).
    return classified.select(F.to_date("_invoice_timestamp").alias("invoice_date"))
