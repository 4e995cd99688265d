"""Gold features from the optional sources: customer attributes and engagement.

Pure DataFrame transforms. Every engineered score is defined here, once:

- `education_level`, `loyalty_level`: ordinal encodings, the level's rank scaled to 0..1
  (Secondary 0 .. Doctorate 1; Bronze 0 .. Platinum 1); null education stays null (unknown).
- `engagement_score` = emails_opened + 2 × emails_clicked (a click says more than an open).
- `behaviour_score` = ln(1 + sessions) + ln(1 + page_views) + ln(1 + session_minutes).
- `spend_engagement` = signed ln(1 + |monetary|) × ln(1 + engagement_score): high only for
  customers who both spend and engage.

Categorical attributes (gender, marital_status, region) stay text in gold; training one-hot
encodes them inside the model pipeline, so scoring always encodes the same way.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ..silver.sources import EDUCATION_LEVELS, LOYALTY_TIERS, UNKNOWN


def ordinal_level(value: Column, levels: tuple[str, ...]) -> Column:
    """The level's rank scaled to 0..1 (lowest 0, highest 1); null for null or unknown values."""
    level = F.lit(None).cast("double")
    for rank, name in reversed(list(enumerate(levels))):
        level = F.when(value == F.lit(name), F.lit(rank / (len(levels) - 1))).otherwise(level)
    return level


def signed_log1p(value: Column) -> Column:
    return F.signum(value) * F.log1p(F.abs(value))


def customer_attributes(customers: DataFrame) -> DataFrame:
    """The current silver.customers row per customer, encoded."""
    return customers.where("is_current").select(
        "customer_id", "age", "income",
        ordinal_level(F.col("education"), EDUCATION_LEVELS).alias("education_level"),
        ordinal_level(F.col("loyalty_tier"), LOYALTY_TIERS).alias("loyalty_level"),
        "gender", "marital_status", "region")


def engagement_totals(engagement: DataFrame, as_of_date: dt.date) -> DataFrame:
    """Monthly engagement summed per customer, over the months before the reference date's month."""
    before = engagement.where(F.col("month") < F.lit(as_of_date.strftime("%Y-%m")))
    return before.groupBy("customer_id").agg(
        *[F.sum(c).alias(c) for c in ("emails_opened", "emails_clicked", "sessions", "page_views",
                                      "session_minutes")])


def enrich(features: DataFrame, attributes: DataFrame | None, engagement: DataFrame | None) -> DataFrame:
    """customer_features plus the optional sources' columns; one row per customer still.

    A customer missing from a source gets that source's defaults: unknown (null) age, income and
    education, the lowest loyalty tier, `Unknown` categories, zero engagement.
    """
    df = features
    if attributes is not None:
        df = (df.join(attributes, "customer_id", "left")
              .fillna({"loyalty_level": 0.0, "gender": UNKNOWN, "marital_status": UNKNOWN, "region": UNKNOWN}))
    if engagement is not None:
        counts = ("emails_opened", "emails_clicked", "sessions", "page_views")
        df = (df.join(engagement, "customer_id", "left")
              .fillna({**{c: 0 for c in counts}, "session_minutes": 0.0})
              .withColumn("engagement_score", (F.col("emails_opened") + 2 * F.col("emails_clicked")).cast("double"))
              .withColumn("behaviour_score", F.log1p("sessions") + F.log1p("page_views") + F.log1p("session_minutes"))
              .withColumn("spend_engagement", signed_log1p(F.col("monetary")) * F.log1p("engagement_score")))
    return df
