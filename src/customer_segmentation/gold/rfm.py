"""Rule-based RFM segments: rank scores of recency, frequency and monetary value, and the segment
of each score cell (config/rfm_segments.yaml). Pure DataFrame transforms."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from ..core.rules import RfmRule
from .features import has_net_purchases


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
