"""Gold customer features: pure DataFrame transforms over silver orders.

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

from ..core.errors import ConfigError

# Customers whose purchase behaviour can be described: a positive net spend on goods. The others
# (only returns, or everything bought cancelled) get a segment of their own by rule (see README).
NET_PURCHASES = "monetary > 0"
# Their segment number wherever segments are numbered (the model's own segments are 0, 1, ...).
RULE_SEGMENT_ID = -1


def has_net_purchases() -> Column:
    return F.expr(NET_PURCHASES)


def distinct_count(value: Column) -> Column:
    """The exact number of distinct non-null values, for groups of up to thousands of values (a
    customer's invoices or products, a month's invoices once lines are summed per invoice). Spark
    plans several `countDistinct`s in one aggregation by copying every input row once per distinct
    column, and even one by shuffling every distinct (group, value) pair; a set per group does neither."""
    return F.size(F.collect_set(value)).cast("long")


def is_counted(as_of_date: dt.date) -> Column:
    """A line every feature and insight counts: goods, dated before the reference date."""
    return F.col("is_product") & (F.col("invoice_date") < F.lit(as_of_date))


def is_customer_line(as_of_date: dt.date) -> Column:
    """A line the customer features read: any valid line of a customer before the reference date."""
    return F.col("has_customer") & (F.col("invoice_date") < F.lit(as_of_date))


def counted_lines(orders: DataFrame, as_of_date: dt.date) -> DataFrame:
    return orders.where(is_counted(as_of_date))


# The silver columns gold reads.
GOLD_COLUMNS = ("customer_id", "has_customer", "is_product", "is_cancellation", "invoice_no", "invoice_date",
                "stock_code", "description", "quantity", "line_amount", "country")


def gold_lines(orders: DataFrame, as_of_date: dt.date) -> DataFrame:
    """Every line a gold table reads, in one frame: valid lines dated before the reference date that
    belong to a customer (features) or are goods (features and insights), gold's columns only.
    Every gold transform gives the same result on it as on the whole orders table."""
    return orders.where(is_customer_line(as_of_date) | is_counted(as_of_date)).select(*GOLD_COLUMNS)


# What `invoice_lines` keeps of a line: everything a gold table groups, filters or counts by
# except the product (counted from the lines themselves).
INVOICE_KEY = ("invoice_no", "customer_id", "has_customer", "invoice_date", "country", "is_cancellation", "is_product")


def invoice_lines(orders: DataFrame) -> DataFrame:
    """The lines summed per invoice and kind of line (goods or not, purchase or return): `amount`
    (their net amount, an exact decimal) and `lines` (how many). About a twentieth as many rows as
    lines, and every feature and insight that counts orders, purchase days, customers or countries
    reads them instead of the lines (their distinct counts are then over small sets)."""
    return orders.groupBy(*INVOICE_KEY).agg(F.sum("line_amount").alias("amount"), F.count("*").alias("lines"))


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
    goods = F.col("is_product")
    purchase = goods & ~F.col("is_cancellation")
    returned = goods & F.col("is_cancellation")
    invoices = invoice_lines(orders).where(is_customer_line(as_of_date))
    # Sums stay exact decimals until the end: totals are the same whatever the row order.
    amount = F.col("amount")
    per_customer = invoices.groupBy("customer_id").agg(
        distinct_count(F.when(purchase, F.col("invoice_no"))).alias("frequency"),
        F.coalesce(F.sum(F.when(purchase, amount)), F.lit(0)).cast("double").alias("gross_revenue"),
        F.coalesce(-F.sum(F.when(returned, amount)), F.lit(0)).cast("double").alias("returns_value"),
        F.min(F.when(purchase, F.col("invoice_date"))).alias("_first_purchase"),
        F.max(F.when(purchase, F.col("invoice_date"))).alias("_last_purchase"),
        F.min("invoice_date").alias("_first_activity"),
        F.max("invoice_date").alias("_last_activity"),
        distinct_count(F.when(purchase, F.col("invoice_date"))).alias("_purchase_days"),
        F.coalesce(F.sum(F.when(goods, amount)), F.lit(0)).cast("double").alias("_net_revenue"),
    )
    # The products a customer bought, as a set per customer: each task then sends a set per customer
    # it saw, not every (customer, product) pair (most pairs of a file are distinct; BENCHMARKS.md).
    products = (orders.where(is_customer_line(as_of_date) & purchase).groupBy("customer_id")
                .agg(distinct_count(F.col("stock_code")).alias("_products")))
    country_rank = Window.partitionBy("customer_id").orderBy(F.desc("lines"), "country")
    main_country = (invoices.groupBy("customer_id", "country").agg(F.sum("lines").alias("lines"))
                    .withColumn("_rank", F.row_number().over(country_rank))
                    .where("_rank = 1").select("customer_id", F.col("country").alias("main_country")))
    per_customer = (per_customer.join(main_country, "customer_id").join(products, "customer_id", "left")
                    .withColumn("distinct_products", F.coalesce("_products", F.lit(0))))
    as_of = F.lit(as_of_date)
    first = F.coalesce("_first_purchase", "_first_activity")
    last = F.coalesce("_last_purchase", "_last_activity")
    span = F.datediff("_last_purchase", "_first_purchase").cast("double")
    return (
        per_customer.select(
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
