"""Business insight tables in gold: pure DataFrame transforms over silver orders and features.

Revenue here follows the same rule as `monetary` (goods only, net of cancellations and returns,
before the reference date) and includes guest checkouts, which have no customer but are sales.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DoubleType, IntegerType, LongType, StringType

from .features import counted_lines
from .tables import Column as Col
from .tables import TableSpec

TOP_PRODUCTS = 50
TOP_CUSTOMERS = 100
CONCENTRATION_PERCENTS = (1, 5, 20)

_AS_OF = Col("as_of_date", DateType(), "Reference date: lines on or after it are not counted")
_NET = Col("net_revenue", DoubleType(), "Revenue from goods net of cancellations and returns")
_ORDERS = Col("orders", LongType(), "Distinct invoices with a purchase")
_SHARE = Col("share_of_revenue", DoubleType(), "This row's share of total net revenue (0-1; null when the total "
                                              "is not positive)")

SPECS = {
    "monthly_revenue": TableSpec(
        "Revenue, orders and customers per calendar month (guest checkouts included in revenue and orders).",
        (Col("month", DateType(), "First day of the month"), _NET,
         Col("gross_revenue", DoubleType(), "Revenue from purchases before cancellations and returns"),
         Col("returns_value", DoubleType(), "Value of cancellations and returns (positive)"), _ORDERS,
         Col("active_customers", LongType(), "Customers with at least one purchase in the month"),
         Col("new_customers", LongType(), "Customers whose first purchase was in the month"), _AS_OF)),
    "revenue_by_weekday": TableSpec(
        "Net revenue and orders by day of the week.",
        (Col("weekday_number", IntegerType(), "1 = Monday .. 7 = Sunday"),
         Col("weekday", StringType(), "Day name"), _NET, _ORDERS, _SHARE, _AS_OF)),
    "revenue_by_country": TableSpec(
        "Net revenue, orders and customers by country of the order line.",
        (Col("country", StringType(), "Country"), _NET, _ORDERS,
         Col("customers", LongType(), "Distinct customers (guests not counted)"), _SHARE, _AS_OF)),
    "top_products": TableSpec(
        f"Products in the top {TOP_PRODUCTS} by units sold or by net revenue.",
        (Col("stock_code", StringType(), "Product code"),
         Col("description", StringType(), "Most common description of the product"),
         Col("quantity_sold", LongType(), "Units sold net of returns"), _NET, _ORDERS,
         Col("rank_by_quantity", IntegerType(), "1 = most units sold"),
         Col("rank_by_revenue", IntegerType(), "1 = highest net revenue"), _AS_OF)),
    "top_customers": TableSpec(
        f"The {TOP_CUSTOMERS} customers with the highest net revenue.",
        (Col("rank", IntegerType(), "1 = highest net revenue"), Col("customer_id", StringType(), "Customer ID"),
         Col("monetary", DoubleType(), "Net revenue from goods"),
         Col("frequency", LongType(), "Distinct purchase invoices"),
         Col("main_country", StringType(), "Country of most of the customer's lines"),
         Col("last_purchase_date", DateType(), "Last purchase"), _AS_OF)),
    "lost_customers_monthly": TableSpec(
        "Customers whose last purchase fell in the month and who have not bought since (as of the "
        "reference date), with the net revenue they had brought.",
        (Col("month", DateType(), "First day of the month of the last purchase"),
         Col("customers_lost", LongType(), "Customers with their last purchase in the month"),
         Col("their_net_revenue", DoubleType(), "Total net revenue these customers had brought"),
         Col("days_since_month_end", IntegerType(), "Days from the end of the month to the reference date: "
                                                    "recent months are not lost yet, only quiet"),
         _AS_OF)),
    "revenue_concentration": TableSpec(
        "Share of net revenue brought by the top 1%, 5% and 20% of customers by net revenue.",
        (Col("top_percent", IntegerType(), "Size of the group, in percent of customers"),
         Col("customers", LongType(), "Customers in the group"),
         Col("share_of_net_revenue", DoubleType(), "Their share of all customers' net revenue (0-1; null when the "
                                                   "total is not positive)"), _AS_OF)),
}


def monthly_revenue(orders: DataFrame, features: DataFrame, as_of_date: dt.date) -> DataFrame:
    lines = counted_lines(orders, as_of_date).withColumn("month", F.trunc("invoice_date", "month"))
    purchase = ~F.col("is_cancellation")
    amount = F.col("line_amount")
    new = (features.where(F.col("frequency") > 0)
           .groupBy(F.trunc("first_purchase_date", "month").alias("month")).agg(F.count("*").alias("new_customers")))
    return (lines.groupBy("month").agg(
        _revenue(F.sum(amount)).alias("net_revenue"),
        _revenue(F.sum(F.when(purchase, amount))).alias("gross_revenue"),
        _revenue(-F.sum(F.when(~purchase, amount))).alias("returns_value"),
        F.countDistinct(F.when(purchase, F.col("invoice_no"))).alias("orders"),
        F.countDistinct(F.when(purchase, F.col("customer_id"))).alias("active_customers"),
    ).join(new, "month", "left").fillna(0, ["new_customers"])
        .withColumn("as_of_date", F.lit(as_of_date)).orderBy("month"))


def _revenue(decimal_sum):
    """Exact decimal sum -> double (0 when there is nothing to sum)."""
    return F.coalesce(decimal_sum, F.lit(0)).cast("double")


def _with_share(df: DataFrame) -> DataFrame:
    """Each row's share of the total net revenue; undefined (null) when the total is not positive."""
    total = F.sum(F.col("net_revenue").cast("decimal(24,4)")).over(Window.partitionBy()).cast("double")
    return df.withColumn("share_of_revenue", F.when(total > 0, F.col("net_revenue") / total))


def revenue_by_weekday(orders: DataFrame, as_of_date: dt.date) -> DataFrame:
    lines = counted_lines(orders, as_of_date)
    grouped = lines.groupBy(
        ((F.dayofweek("invoice_date") + 5) % 7 + 1).alias("weekday_number"),
        F.date_format("invoice_date", "EEEE").alias("weekday"),
    ).agg(_revenue(F.sum("line_amount")).alias("net_revenue"),
          F.countDistinct(F.when(~F.col("is_cancellation"), F.col("invoice_no"))).alias("orders"))
    return _with_share(grouped).withColumn("as_of_date", F.lit(as_of_date)).orderBy("weekday_number")


def revenue_by_country(orders: DataFrame, as_of_date: dt.date) -> DataFrame:
    lines = counted_lines(orders, as_of_date)
    grouped = lines.groupBy("country").agg(
        _revenue(F.sum("line_amount")).alias("net_revenue"),
        F.countDistinct(F.when(~F.col("is_cancellation"), F.col("invoice_no"))).alias("orders"),
        F.countDistinct("customer_id").alias("customers"))
    return _with_share(grouped).withColumn("as_of_date", F.lit(as_of_date)).orderBy(F.desc("net_revenue"))


def top_products(orders: DataFrame, as_of_date: dt.date) -> DataFrame:
    lines = counted_lines(orders, as_of_date).where(F.col("stock_code").isNotNull())
    description_rank = Window.partitionBy("stock_code").orderBy(F.desc("n"), "description")
    descriptions = (lines.where(F.col("description") != "").groupBy("stock_code", "description")
                    .agg(F.count("*").alias("n"))
                    .withColumn("r", F.row_number().over(description_rank)).where("r = 1")
                    .select("stock_code", "description"))
    per_product = lines.groupBy("stock_code").agg(
        F.sum("quantity").cast("long").alias("quantity_sold"),
        _revenue(F.sum("line_amount")).alias("net_revenue"),
        F.countDistinct(F.when(~F.col("is_cancellation"), F.col("invoice_no"))).alias("orders"))
    everyone = Window.partitionBy(F.lit(1))
    ranked = (per_product.join(descriptions, "stock_code", "left")
              .withColumn("rank_by_quantity", F.row_number().over(everyone.orderBy(F.desc("quantity_sold"), "stock_code")))
              .withColumn("rank_by_revenue", F.row_number().over(everyone.orderBy(F.desc("net_revenue"), "stock_code"))))
    return (ranked.where((F.col("rank_by_quantity") <= TOP_PRODUCTS) | (F.col("rank_by_revenue") <= TOP_PRODUCTS))
            .withColumn("as_of_date", F.lit(as_of_date)).orderBy("rank_by_revenue"))


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
                F.when(F.sum("monetary") > 0, F.sum(F.when(F.col("rank") <= group_size, F.col("monetary"))).cast("double")
                       / F.sum("monetary").cast("double")).alias("share_of_net_revenue"))
            .withColumn("as_of_date", F.lit(as_of_date)).orderBy("top_percent"))
