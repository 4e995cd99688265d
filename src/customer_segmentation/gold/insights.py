"""Business insight tables in gold: pure DataFrame transforms over silver orders and features.

Revenue here follows the same rule as `monetary` (goods only, net of cancellations and returns,
before the reference date) and includes guest checkouts, which have no customer but are sales.
What counts orders or customers reads the lines summed per invoice (`features.invoice_lines`).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ..core.tables import table
from .features import counted_lines, distinct_count, invoice_lines, is_counted

TOP_PRODUCTS = table("top_products").options["limit"]
TOP_CUSTOMERS = table("top_customers").options["limit"]
CONCENTRATION_PERCENTS = tuple(table("revenue_concentration").options["percents"])
INVOICE_BUCKETS = 64  # a top product's invoices split this many ways: about 2,400 a set at 50M lines


def counted_invoices(orders: DataFrame, as_of_date: dt.date) -> DataFrame:
    """The counted lines (goods before the reference date) summed per invoice: `amount`, `lines`."""
    return invoice_lines(orders).where(is_counted(as_of_date))


def monthly_revenue(orders: DataFrame, features: DataFrame, as_of_date: dt.date) -> DataFrame:
    invoices = counted_invoices(orders, as_of_date).withColumn("month", F.trunc("invoice_date", "month"))
    purchase = ~F.col("is_cancellation")
    amount = F.col("amount")
    new = (features.where(F.col("frequency") > 0)
           .groupBy(F.trunc("first_purchase_date", "month").alias("month")).agg(F.count("*").alias("new_customers")))
    # The data's first day and the reference date bound the first and last months: a month either
    # cuts short is not a fall, so its days are a column of the table, not worked out by each reader.
    first_day = F.min("first_day").over(Window.partitionBy())
    covered_from, covered_to = F.greatest("month", first_day), F.least(F.add_months("month", 1), F.lit(as_of_date))
    return (invoices.groupBy("month").agg(
        F.min("invoice_date").alias("first_day"),
        _revenue(F.sum(amount)).alias("net_revenue"),
        _revenue(F.sum(F.when(purchase, amount))).alias("gross_revenue"),
        _revenue(-F.sum(F.when(~purchase, amount))).alias("returns_value"),
        distinct_count(F.when(purchase, F.col("invoice_no"))).alias("orders"),
        distinct_count(F.when(purchase, F.col("customer_id"))).alias("active_customers"),
    ).join(new, "month", "left").fillna(0, ["new_customers"])
        .withColumn("days_counted", F.datediff(covered_to, covered_from))
        .withColumn("as_of_date", F.lit(as_of_date)).orderBy("month"))


def _revenue(decimal_sum):
    """Exact decimal sum -> double (0 when there is nothing to sum)."""
    return F.coalesce(decimal_sum, F.lit(0)).cast("double")


def _with_share(df: DataFrame) -> DataFrame:
    """Each row's share of the total net revenue; undefined (null) when the total is not positive."""
    total = F.sum(F.col("net_revenue").cast("decimal(24,4)")).over(Window.partitionBy()).cast("double")
    return df.withColumn("share_of_revenue", F.when(total > 0, F.col("net_revenue") / total))


def revenue_by_weekday(orders: DataFrame, as_of_date: dt.date) -> DataFrame:
    invoices = counted_invoices(orders, as_of_date)
    grouped = invoices.groupBy(
        ((F.dayofweek("invoice_date") + 5) % 7 + 1).alias("weekday_number"),
        F.date_format("invoice_date", "EEEE").alias("weekday"),
    ).agg(_revenue(F.sum("amount")).alias("net_revenue"),
          distinct_count(F.when(~F.col("is_cancellation"), F.col("invoice_no"))).alias("orders"))
    return _with_share(grouped).withColumn("as_of_date", F.lit(as_of_date)).orderBy("weekday_number")


def revenue_by_country(orders: DataFrame, as_of_date: dt.date) -> DataFrame:
    invoices = counted_invoices(orders, as_of_date)
    grouped = invoices.groupBy("country").agg(
        _revenue(F.sum("amount")).alias("net_revenue"),
        distinct_count(F.when(~F.col("is_cancellation"), F.col("invoice_no"))).alias("orders"),
        distinct_count(F.col("customer_id")).alias("customers"))
    return _with_share(grouped).withColumn("as_of_date", F.lit(as_of_date)).orderBy(F.desc("net_revenue"))


def top_products(orders: DataFrame, as_of_date: dt.date) -> DataFrame:
    """The TOP_PRODUCTS products by quantity sold and by net revenue, each named by its usual (most
    frequent non-empty) description. Both rankings and the description come from one aggregation
    of the lines, per product and description; the orders are then counted for the chosen few."""
    lines = counted_lines(orders, as_of_date).where(F.col("stock_code").isNotNull())
    product = Window.partitionBy("stock_code")
    described = F.col("description") != ""
    usual_first = product.orderBy(described.desc_nulls_last(), F.desc("lines"), "description")
    products = (lines.groupBy("stock_code", "description")
                .agg(F.sum("quantity").alias("quantity"), F.sum("line_amount").alias("amount"),
                     F.count("*").alias("lines"))
                .select("stock_code", F.when(described, F.col("description")).alias("description"),
                        F.sum("quantity").over(product).cast("long").alias("quantity_sold"),
                        _revenue(F.sum("amount").over(product)).alias("net_revenue"),
                        F.row_number().over(usual_first).alias("_usual"))
                .where("_usual = 1"))
    everyone = Window.partitionBy(F.lit(1))
    ranked = (products
              .withColumn("rank_by_quantity",
                          F.row_number().over(everyone.orderBy(F.desc("quantity_sold"), "stock_code")))
              .withColumn("rank_by_revenue",
                          F.row_number().over(everyone.orderBy(F.desc("net_revenue"), "stock_code")))
              .where((F.col("rank_by_quantity") <= TOP_PRODUCTS) | (F.col("rank_by_revenue") <= TOP_PRODUCTS)))
    # Their orders (purchase invoices) counted as sets per product and bucket of invoice numbers, then
    # summed: an invoice falls in one bucket, so the sum is exact, and no task collects a product's
    # every invoice nor shuffles each (product, invoice) pair (BENCHMARKS.md).
    invoice_bucket = F.pmod(F.xxhash64("invoice_no"), F.lit(INVOICE_BUCKETS))
    orders_of = (lines.join(F.broadcast(ranked.select("stock_code")), "stock_code")
                 .groupBy("stock_code", invoice_bucket)
                 .agg(distinct_count(F.when(~F.col("is_cancellation"), F.col("invoice_no"))).alias("orders"))
                 .groupBy("stock_code").agg(F.sum("orders").alias("orders")))
    return (ranked.join(orders_of, "stock_code").withColumn("as_of_date", F.lit(as_of_date))
            .select(*table("top_products").spec().names).orderBy("rank_by_revenue"))


def top_customers(features: DataFrame) -> DataFrame:
    order = Window.partitionBy(F.lit(1)).orderBy(F.desc("monetary"), "customer_id")
    return (features.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= TOP_CUSTOMERS)
            .select("rank", "customer_id", "monetary", "frequency", "main_country", "last_purchase_date",
                    "as_of_date").orderBy("rank"))


def lost_customers_monthly(features: DataFrame, as_of_date: dt.date) -> DataFrame:
    month = F.trunc("last_purchase_date", "month")
    return (features.where(F.col("frequency") > 0).groupBy(month.alias("month"))
            .agg(F.count("*").alias("customers_lost"),
                 F.sum(F.col("monetary").cast("decimal(24,4)")).cast("double").alias("their_net_revenue"))
            .withColumn("days_since_month_end", F.datediff(F.lit(as_of_date), F.last_day("month")))
            .withColumn("as_of_date", F.lit(as_of_date)).orderBy("month"))


def revenue_concentration(features: DataFrame, as_of_date: dt.date) -> DataFrame:
    order = Window.partitionBy(F.lit(1)).orderBy(F.desc("monetary"), "customer_id")
    ranked = features.select(F.col("monetary").cast("decimal(24,4)").alias("monetary"),
                             F.row_number().over(order).alias("rank"),
                             F.count("*").over(Window.partitionBy(F.lit(1))).alias("n"))
    percents = ranked.sparkSession.createDataFrame([(p,) for p in CONCENTRATION_PERCENTS], "top_percent int")
    group_size = F.ceil(F.col("n") * F.col("top_percent") / 100)
    return (ranked.crossJoin(F.broadcast(percents))
            .groupBy("top_percent").agg(
                F.max(group_size).cast("long").alias("customers"),
                F.when(F.sum("monetary") > 0,
                       F.sum(F.when(F.col("rank") <= group_size, F.col("monetary"))).cast("double")
                       / F.sum("monetary").cast("double")).alias("share_of_net_revenue"))
            .withColumn("as_of_date", F.lit(as_of_date)).orderBy("top_percent"))
