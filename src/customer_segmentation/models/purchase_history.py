"""Each customer's repeat-purchase summary for the lifetime-value models: pure DataFrame transforms.

A transaction is a purchase day: the goods lines of one customer on one day (the lines every
feature counts), as in the papers. Per customer, as of a reference date: x, transactions after the
first; t_x, weeks from the first to the last; T, weeks from the first to the reference date; m_x,
the mean net goods amount of the repeat transactions (a day's returns count against it). Days are
counted exactly; weeks are days / 7.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..gold.features import counted_lines

WEEK = 7.0


def purchase_days(orders: DataFrame, as_of_date: dt.date) -> DataFrame:
    """customer_id, day, net amount of goods that day, for every day with a purchase of goods."""
    lines = counted_lines(orders, as_of_date).where("has_customer")
    return (lines.groupBy("customer_id", F.col("invoice_date").alias("day"))
            .agg(F.sum("line_amount").cast("double").alias("net_amount"),
                 F.max(~F.col("is_cancellation")).alias("has_purchase"))
            .where("has_purchase").drop("has_purchase"))


def summaries(days: DataFrame, customers: DataFrame, as_of_date: dt.date) -> DataFrame:
    """One row per customer of `customers` (customer_id, first_purchase_date): x, t_x_days, T_days,
    m_x (null without repeat transactions). A customer without a purchase day is observed from
    their first activity with no transactions."""
    per_customer = days.groupBy("customer_id").agg(
        F.count("*").alias("_transactions"), F.min("day").alias("_first"), F.max("day").alias("_last"),
        F.sum("net_amount").alias("_spend"), F.min_by("net_amount", "day").alias("_first_spend"))
    joined = customers.select("customer_id", "first_purchase_date").join(per_customer, "customer_id", "left")
    first = F.coalesce("_first", "first_purchase_date")
    x = F.coalesce(F.col("_transactions") - 1, F.lit(0)).cast("long")
    return joined.select(
        "customer_id", x.alias("x"),
        F.coalesce(F.datediff("_last", "_first"), F.lit(0)).alias("t_x_days"),
        F.datediff(F.lit(as_of_date), first).alias("T_days"),
        F.when(x > 0, (F.col("_spend") - F.col("_first_spend")) / x).alias("m_x"))


def holdout_transactions(days: DataFrame, start: dt.date, end: dt.date) -> DataFrame:
    """customer_id and the purchase days in [start, end): what each customer did in the holdout."""
    return (days.where((F.col("day") >= F.lit(start)) & (F.col("day") < F.lit(end)))
            .groupBy("customer_id").agg(F.count("*").alias("holdout_transactions")))
