"""Gold customer features and rule-based RFM segments: pure DataFrame transforms.

Which lines count (one definition, used by every feature and insight): valid silver lines of
goods (`is_product`) dated before the reference date. Postage, fees, manual adjustments,
discounts and vouchers are excluded: they are not spend on goods, and in the real data the
manual lines are large one-off corrections that would swamp a customer's value. Cancellations
and returns count negatively, so `monetary` is net revenue.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DoubleType, IntegerType, LongType, StringType

from .errors import ConfigError
from .rules import RfmRule
from .tables import Column as Col
from .tables import TableSpec

CUSTOMER_FEATURES = TableSpec(
    comment="One row per customer with at least one valid order line before the reference date: RFM and "
            "behaviour features as of as_of_date. Every numeric column is a number (never null or NaN).",
    columns=(
        Col("customer_id", StringType(), "Customer ID"),
        Col("recency_days", IntegerType(), "Days from the last purchase to the reference date (as_of_date)"),
        Col("frequency", LongType(), "Distinct invoices with at least one purchase of goods"),
        Col("monetary", DoubleType(), "Net revenue from goods: purchases minus cancellations and returns"),
        Col("gross_revenue", DoubleType(), "Revenue from purchases of goods, before cancellations and returns"),
        Col("returns_value", DoubleType(), "Value of goods cancelled or returned (a positive number)"),
        Col("avg_order_value", DoubleType(), "gross_revenue / frequency (0 without purchases)"),
        Col("first_purchase_date", DateType(), "First purchase (first activity for customers who only returned goods)"),
        Col("last_purchase_date", DateType(), "Last purchase (last activity for customers who only returned goods)"),
        Col("tenure_days", IntegerType(), "Days from the first purchase to the reference date"),
        Col("distinct_products", LongType(), "Distinct products bought"),
        Col("return_rate", DoubleType(), "returns_value / max(gross_revenue, returns_value): 0 = never returns, "
                                         "1 = returned everything bought"),
        Col("avg_days_between_orders", DoubleType(), "Mean days between purchase days; for a single purchase "
                                                     "day, the days since it (no repeat yet)"),
        Col("main_country", StringType(), "Country of most of the customer's lines"),
        Col("as_of_date", DateType(), "Reference date the features describe"),
    ),
)

RFM_SEGMENTS = TableSpec(
    comment="Rule-based RFM segments: scores 1 (worst) .. 5 (best) by rank among customers with net "
            "purchases, ties sharing a score, and the marketing segment of each customer's score cell. Rules "
            "live in config/rfm_segments.yaml; customers without net purchases have no scores and their own "
            "segment.",
    columns=(
        Col("customer_id", StringType(), "Customer ID"),
        Col("recency_days", IntegerType(), "Days since the last purchase"),
        Col("frequency", LongType(), "Distinct purchase invoices"),
        Col("monetary", DoubleType(), "Net revenue from goods"),
        Col("r_score", IntegerType(), "Recency score 1-5; 5 = most recent buyers (null without net purchases)"),
        Col("f_score", IntegerType(), "Frequency score 1-5; 5 = most frequent buyers (null without net purchases)"),
        Col("m_score", IntegerType(), "Monetary score 1-5; 5 = highest net revenue (null without net purchases)"),
        Col("rfm_cell", StringType(), "The three scores as one code, e.g. 545 (null without net purchases)"),
        Col("rfm_segment", StringType(), "Marketing segment of the cell (Champions, At Risk, Lost, ...), or "
                                         "the segment of customers without net purchases"),
        Col("as_of_date", DateType(), "Reference date of the scores"),
    ),
)


# Customers whose purchase behaviour can be described: a positive net spend on goods. The others
# (only returns, or everything bought cancelled) get a segment of their own by rule (see README).
NET_PURCHASES = "monetary > 0"
# Their segment number wherever segments are numbered (the model's own segments are 0, 1, ...).
RULE_SEGMENT_ID = -1


def has_net_purchases() -> Column:
    return F.expr(NET_PURCHASES)


def counted_lines(orders: DataFrame, as_of_date: dt.date) -> DataFrame:
    """The lines every feature and insight counts: goods, dated before the reference date."""
    return orders.where(F.col("is_product") & (F.col("invoice_date") < F.lit(as_of_date)))


def default_as_of_date(orders: DataFrame) -> dt.date | None:
    """The day after the latest invoice, or None without orders."""
    latest = orders.agg(F.max("invoice_date")).first()[0]
    return latest + dt.timedelta(days=1) if latest else None


def check_as_of_date(orders: DataFrame, as_of_date: dt.date) -> None:
    first = orders.agg(F.min("invoice_date")).first()[0]
    if first is not None and as_of_date <= first:
        raise ConfigError("as_of_date", f"{as_of_date} is not after the first invoice ({first}); "
                                        "choose a date after it, or 'auto'")


def customer_features(orders: DataFrame, as_of_date: dt.date) -> DataFrame:
    """One row per customer with a valid line before `as_of_date` (any line: goods or not)."""
    customer_lines = orders.where(F.col("has_customer") & (F.col("invoice_date") < F.lit(as_of_date)))
    goods = F.col("is_product")
    purchase = goods & ~F.col("is_cancellation")
    returned = goods & F.col("is_cancellation")
    # Sums stay exact decimals until the end: totals are the same whatever the row order.
    amount = F.col("line_amount")
    per_customer = customer_lines.groupBy("customer_id").agg(
        F.countDistinct(F.when(purchase, F.col("invoice_no"))).alias("frequency"),
        F.coalesce(F.sum(F.when(purchase, amount)), F.lit(0)).cast("double").alias("gross_revenue"),
        F.coalesce(-F.sum(F.when(returned, amount)), F.lit(0)).cast("double").alias("returns_value"),
        F.min(F.when(purchase, F.col("invoice_date"))).alias("_first_purchase"),
        F.max(F.when(purchase, F.col("invoice_date"))).alias("_last_purchase"),
        F.min("invoice_date").alias("_first_activity"),
        F.max("invoice_date").alias("_last_activity"),
        F.countDistinct(F.when(purchase, F.col("invoice_date"))).alias("_purchase_days"),
        F.countDistinct(F.when(purchase, F.col("stock_code"))).alias("distinct_products"),
        F.coalesce(F.sum(F.when(goods, amount)), F.lit(0)).cast("double").alias("_net_revenue"),
    )
    country_rank = Window.partitionBy("customer_id").orderBy(F.desc("lines"), "country")
    main_country = (customer_lines.groupBy("customer_id", "country").agg(F.count("*").alias("lines"))
                    .withColumn("_rank", F.row_number().over(country_rank))
                    .where("_rank = 1").select("customer_id", F.col("country").alias("main_country")))
    as_of = F.lit(as_of_date)
    first = F.coalesce("_first_purchase", "_first_activity")
    last = F.coalesce("_last_purchase", "_last_activity")
    span = F.datediff("_last_purchase", "_first_purchase").cast("double")
    return (
        per_customer.join(main_country, "customer_id")
        .select(
            "customer_id",
            F.datediff(as_of, last).alias("recency_days"),
            "frequency",
            F.col("_net_revenue").alias("monetary"),
            "gross_revenue",
            "returns_value",
            F.when(F.col("frequency") > 0, F.col("gross_revenue") / F.col("frequency")).otherwise(0.0)
            .alias("avg_order_value"),
            first.alias("first_purchase_date"),
            last.alias("last_purchase_date"),
            F.datediff(as_of, first).alias("tenure_days"),
            "distinct_products",
            F.when(F.greatest("gross_revenue", "returns_value") > 0,
                   F.col("returns_value") / F.greatest("gross_revenue", "returns_value")).otherwise(0.0)
            .alias("return_rate"),
            F.when(F.col("_purchase_days") > 1, span / (F.col("_purchase_days") - 1))
            .otherwise(F.datediff(as_of, last).cast("double")).alias("avg_days_between_orders"),
            "main_country",
            as_of.cast("date").alias("as_of_date"),
        )
    )


def percentile(value: Column) -> Column:
    """Standing of `value` among all rows, in (0, 1): the midpoint of its rank range.

    Ties share a standing (that of their average rank), so the result does not depend on row
    order; all-equal values, or a single row, stand at 0.5.
    """
    rank_low = F.rank().over(Window.partitionBy(F.lit(1)).orderBy(value))
    ties = F.count(F.lit(1)).over(Window.partitionBy(value))
    return (rank_low - 1 + ties / 2) / F.count(F.lit(1)).over(Window.partitionBy(F.lit(1)))


def with_score(df: DataFrame, value: Column, name: str) -> DataFrame:
    """`df` with column `name`: a 1-5 score of `value` (5 for the highest values), ties sharing a score.

    A value's score starts at its lowest rank: floor(5 x customers below it / all customers) + 1,
    so customers with two orders do not share the score of those with three because many have
    one. Then two bounds, so that with five or more distinct values every score 1-5 is used: a
    value scores at most one above the next lower value, and at least what leaves one score for
    each higher value (the highest value always scores 5). Both bounds together are a running
    minimum: score_i = i + max(min over j <= i of (start_j - j), 6 - distinct values), i the
    value's position among the distinct values. With fewer than five distinct values the score
    follows the value's midpoint percentile (all values equal: 3).
    """
    everyone = Window.partitionBy(F.lit(1))
    ordered = everyone.orderBy("__value")
    staged = (df.select("*", value.alias("__value"))
              .select("*", (F.rank().over(ordered) - 1).alias("__below"), (F.dense_rank().over(ordered) - 1)
                      .alias("__position"), F.count(F.lit(1)).over(everyone).alias("__customers"),
                      F.count(F.lit(1)).over(Window.partitionBy("__value")).alias("__ties")))
    start = F.floor(5 * F.col("__below") / F.col("__customers")) + 1
    staged = staged.select(
        "*", F.min(start - F.col("__position")).over(
            ordered.rangeBetween(Window.unboundedPreceding, Window.currentRow)).alias("__lowest_start"),
        (F.max("__position").over(everyone) + 1).alias("__distinct"))
    spread = F.col("__position") + F.greatest("__lowest_start", 6 - F.col("__distinct"))
    midpoint = F.least(F.lit(5), F.floor((F.col("__below") + F.col("__ties") / 2) / F.col("__customers") * 5) + 1)
    score = F.when(F.col("__distinct") >= 5, spread).otherwise(midpoint).cast("int")
    return staged.withColumn(name, score).drop(*[c for c in staged.columns if c.startswith("__")])


def rfm_segment_expression(rules: tuple[RfmRule, ...]) -> Column:
    expression = F.lit(None).cast("string")
    for rule in reversed(rules):
        matches = (F.col("r_score").between(*rule.r) & F.col("f_score").between(*rule.f)
                   & F.col("m_score").between(*rule.m))
        expression = F.when(matches, F.lit(rule.name)).otherwise(expression)
    return expression


def rfm_segments(features: DataFrame, rules: tuple[RfmRule, ...], without_net_purchases: str) -> DataFrame:
    """Scores and rule-based segment of every customer. Scores rank customers with net purchases
    among themselves; the others are segment `without_net_purchases`, without scores."""
    buyers = features.where(has_net_purchases()).select("customer_id", "recency_days", "frequency", "monetary",
                                                        "as_of_date")
    for score, value in (("r_score", -F.col("recency_days")), ("f_score", F.col("frequency")),
                         ("m_score", F.col("monetary"))):
        buyers = with_score(buyers, value, score)
    scored = (buyers
              .withColumn("rfm_cell", F.concat(*[F.col(c).cast("string") for c in ("r_score", "f_score", "m_score")]))
              .withColumn("rfm_segment", rfm_segment_expression(rules)))
    others = features.where(~has_net_purchases()).select(
        "customer_id", "recency_days", "frequency", "monetary", "as_of_date",
        *[F.lit(None).cast("int").alias(c) for c in ("r_score", "f_score", "m_score")],
        F.lit(None).cast("string").alias("rfm_cell"), F.lit(without_net_purchases).alias("rfm_segment"))
    return scored.unionByName(others)
