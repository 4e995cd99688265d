"""What each segment buys and who is in it, when the optional sources give products and customers:
spend per category with its over-index and margin, and the attribute mix. Pure DataFrame transforms."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from ..gold.features import counted_lines
from ..silver.sources import EDUCATION_LEVELS, LOYALTY_TIERS, UNKNOWN

UNCATEGORISED = "Uncategorised"


def category_lines(orders: DataFrame, products: DataFrame, as_of_date: dt.date) -> DataFrame:
    """Counted customer lines with the product's current category and cost."""
    catalogue = products.where("is_current").select("stock_code", "category", "unit_cost")
    return (counted_lines(orders, as_of_date).where("has_customer")
            .join(F.broadcast(catalogue), "stock_code", "left")
            .select("customer_id", "quantity", "line_amount",
                    F.coalesce("category", F.lit(UNCATEGORISED)).alias("category"), "unit_cost"))


def over_index(spend: DataFrame) -> DataFrame:
    """spend: segment_id, category, net_revenue -> adds shares and the over-index.

    over_index = (segment's spend in the category / segment's spend) / (all spend in the category /
    all spend); null where a share's denominator is not positive.
    """
    segment_total = F.sum("net_revenue").over(Window.partitionBy("segment_id"))
    category_total = F.sum("net_revenue").over(Window.partitionBy("category"))
    grand_total = F.sum("net_revenue").over(Window.partitionBy(F.lit(1)))
    share_segment = F.when(segment_total > 0, F.col("net_revenue") / segment_total)
    share_all = F.when(grand_total > 0, category_total / grand_total)
    return (spend.withColumn("share_of_segment_spend", share_segment)
            .withColumn("share_of_all_spend", share_all)
            .withColumn("over_index", F.when(F.col("share_of_all_spend") > 0,
                                             F.col("share_of_segment_spend") / F.col("share_of_all_spend"))))


def segment_categories(lines: DataFrame, segments: DataFrame) -> DataFrame:
    """lines: category_lines(); segments: customer_id, segment_id, segment_name, as_of_date."""
    known_cost = F.col("unit_cost").isNotNull()
    amount = F.col("line_amount").cast("double")
    spend = (lines.join(segments, "customer_id")
             .groupBy("segment_id", "segment_name", "as_of_date", "category")
             .agg(F.sum(amount).alias("net_revenue"),
                  F.sum(F.when(known_cost, amount - F.col("unit_cost") * F.col("quantity"))).alias("margin"),
                  F.sum(F.when(known_cost, amount)).alias("_costed_revenue")))
    return (over_index(spend)
            .withColumn("margin_rate", F.when(F.col("_costed_revenue") > 0, F.col("margin") / F.col("_costed_revenue")))
            .drop("_costed_revenue"))


def _level_name(level: Column, levels: tuple[str, ...]) -> Column:
    name = F.lit(UNKNOWN)
    for rank, value in reversed(list(enumerate(levels))):
        name = F.when(F.abs(level - F.lit(rank / (len(levels) - 1))) < 1e-9, F.lit(value)).otherwise(name)
    return name


def segment_attributes(scored: DataFrame) -> DataFrame:
    """scored: enriched customer features with segment_id and segment_name (long format out)."""
    age_band = (F.when(F.col("age").isNull(), F.lit(UNKNOWN)).when(F.col("age") < 30, "under 30")
                .when(F.col("age") < 45, "30-44").when(F.col("age") < 60, "45-59").otherwise("60 and over"))
    values = {"gender": F.col("gender"), "marital_status": F.col("marital_status"), "region": F.col("region"),
              "education": _level_name(F.col("education_level"), EDUCATION_LEVELS),
              "loyalty_tier": _level_name(F.col("loyalty_level"), LOYALTY_TIERS), "age_band": age_band}
    long = scored.select("segment_id", "segment_name", "as_of_date", F.explode(F.array(*[
        F.struct(F.lit(name).alias("attribute"), value.cast("string").alias("value")) for name, value in values.items()
    ])).alias("a")).select("segment_id", "segment_name", "as_of_date", "a.attribute", "a.value")
    counts = long.groupBy("segment_id", "segment_name", "as_of_date", "attribute", "value").agg(
        F.count("*").alias("customers"))
    in_segment = F.sum("customers").over(Window.partitionBy("segment_id", "attribute"))
    with_value = F.sum("customers").over(Window.partitionBy("attribute", "value"))
    everyone = F.sum("customers").over(Window.partitionBy("attribute"))
    return (counts.withColumn("share_of_segment", F.col("customers") / in_segment)
            .withColumn("share_of_all", with_value / everyone))
