"""Gold features from the optional sources, value tiers, and what each segment buys.

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
from concurrent.futures import ThreadPoolExecutor

from pyspark.ml.clustering import KMeans
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DoubleType, IntegerType, LongType, StringType

from .attributes import EDUCATION_LEVELS, LOYALTY_TIERS, UNKNOWN
from .features import CUSTOMER_FEATURES, counted_lines
from .tables import Column as Col
from .tables import TableSpec

ATTRIBUTE_COLUMNS = (
    Col("age", IntegerType(), "Age in years (null when unknown, e.g. a business)"),
    Col("income", DoubleType(), "Yearly income (null when unknown)"),
    Col("education_level", DoubleType(), "Education as a level 0..1: " + " < ".join(EDUCATION_LEVELS)
        + " (null when unknown)"),
    Col("loyalty_level", DoubleType(), "Loyalty tier as a level 0..1: " + " < ".join(LOYALTY_TIERS)
        + " (no tier: the lowest)"),
    Col("gender", StringType(), f"Gender ({UNKNOWN} when not given)"),
    Col("marital_status", StringType(), f"Marital status ({UNKNOWN} when not given)"),
    Col("region", StringType(), f"Region ({UNKNOWN} when not given)"),
)
ENGAGEMENT_COLUMNS = (
    Col("emails_opened", LongType(), "Marketing emails opened, months before the reference date"),
    Col("emails_clicked", LongType(), "Marketing emails clicked"),
    Col("sessions", LongType(), "Web sessions"),
    Col("page_views", LongType(), "Pages viewed"),
    Col("session_minutes", DoubleType(), "Minutes spent in sessions"),
    Col("engagement_score", DoubleType(), "emails_opened + 2 x emails_clicked"),
    Col("behaviour_score", DoubleType(), "ln(1+sessions) + ln(1+page_views) + ln(1+session_minutes)"),
    Col("spend_engagement", DoubleType(), "signed ln(1+|monetary|) x ln(1+engagement_score)"),
)
CATEGORICAL_FEATURES = ("gender", "marital_status", "region")


def enriched_spec(sources: tuple[str, ...]) -> TableSpec:
    """customer_features' columns: as before without optional sources, plus what the sources give."""
    if not sources:
        return CUSTOMER_FEATURES
    base = CUSTOMER_FEATURES.columns
    extra = ((ATTRIBUTE_COLUMNS if "customers" in sources else ())
             + (ENGAGEMENT_COLUMNS if "engagement" in sources else ()))
    return TableSpec(comment=CUSTOMER_FEATURES.comment + " With the optional sources: attributes, engagement "
                     "and engineered scores (definitions in enrich.py).", columns=base[:-1] + extra + base[-1:])


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


# --- Value tiers: the per-dimension method ---------------------------------------------------

VALUE_TIERS = TableSpec(
    comment="Value tier of every customer: recency, frequency and net revenue each clustered on its own "
            "(1-D k-means, k=4), clusters scored 1 (worst) to 4 (best), scores summed (3-12) and mapped to "
            "Low (3-5), Mid (6-8) or High (9-12).",
    columns=(
        Col("customer_id", StringType(), "Customer ID"),
        Col("recency_days", IntegerType(), "Days since the last purchase"),
        Col("frequency", LongType(), "Distinct purchase invoices"),
        Col("monetary", DoubleType(), "Net revenue from goods"),
        Col("recency_tier", IntegerType(), "1-4; 4 = the cluster of the most recent buyers"),
        Col("frequency_tier", IntegerType(), "1-4; 4 = the cluster of the most frequent buyers"),
        Col("monetary_tier", IntegerType(), "1-4; 4 = the cluster of the highest net revenue"),
        Col("value_score", IntegerType(), "recency_tier + frequency_tier + monetary_tier (3-12)"),
        Col("value_tier", StringType(), "Low (3-5), Mid (6-8) or High (9-12)"),
        Col("as_of_date", DateType(), "Reference date"),
    ),
)
TIER_CLUSTERS = 4


def tier_of_clusters(centres: list[float], higher_is_better: bool) -> dict[int, int]:
    """Cluster index -> score 1..4, ordered by centre so that a higher score is a better customer.

    With fewer than four clusters (few distinct values) the scores still span 1..4.
    """
    order = sorted(range(len(centres)), key=lambda i: centres[i], reverse=not higher_is_better)
    if len(order) == 1:
        return {order[0]: 2}
    return {cluster: 1 + round(rank * (TIER_CLUSTERS - 1) / (len(order) - 1)) for rank, cluster in enumerate(order)}


def _tier_model(values: DataFrame, column: str, seed: int):
    """1-D k-means over `column` (and its vector `column__vector`) with up to TIER_CLUSTERS clusters;
    None when all values are equal."""
    distinct = values.select(column).distinct().limit(TIER_CLUSTERS).count()
    if distinct < 2:
        return None
    return KMeans(k=distinct, seed=seed, featuresCol=f"{column}__vector", predictionCol=f"{column}__cluster",
                  maxIter=50, solver="row").fit(values)


def value_tiers(features: DataFrame, seed: int) -> DataFrame:
    """Per-dimension value tiers of every customer (skewed frequency and revenue on a log scale).

    The three fits run side by side over one sorted, single-partition, checkpointed copy of the
    values: each seeded fit sees the same points in the same order every run, and no fit's
    Spark jobs go back through the customer features to the orders.
    """
    dimensions = {  # tier column: (value clustered, whether a higher value is better)
        "recency_tier": ("_recency", False), "frequency_tier": ("_frequency", True),
        "monetary_tier": ("_monetary", True)}
    df = features.select("customer_id", "recency_days", "frequency", "monetary", "as_of_date",
                         F.col("recency_days").cast("double").alias("_recency"),
                         F.log1p("frequency").alias("_frequency"),
                         signed_log1p(F.col("monetary")).alias("_monetary"))
    for column, _ in dimensions.values():
        df = VectorAssembler(inputCols=[column], outputCol=f"{column}__vector").transform(df)
    df = df.orderBy("customer_id").coalesce(1).localCheckpoint()
    with ThreadPoolExecutor(max_workers=len(dimensions)) as pool:
        models = dict(zip(dimensions, pool.map(lambda name: _tier_model(df, dimensions[name][0], seed), dimensions)))
    for name, (column, higher_is_better) in dimensions.items():
        model = models[name]
        if model is None:
            df = df.withColumn(name, F.lit(2))
            continue
        tiers = tier_of_clusters([float(c[0]) for c in model.clusterCenters()], higher_is_better)
        mapping = F.create_map(*[F.lit(x) for pair in tiers.items() for x in pair])
        df = model.transform(df).withColumn(name, mapping[F.col(f"{column}__cluster")])
    score = F.col("recency_tier") + F.col("frequency_tier") + F.col("monetary_tier")
    helpers = [f"{column}{suffix}" for column, _ in dimensions.values() for suffix in ("", "__vector", "__cluster")]
    return (df.drop(*helpers)
            .withColumn("value_score", score)
            .withColumn("value_tier", F.when(score >= 9, "High").when(score >= 6, "Mid").otherwise("Low")))


# --- What segments buy -----------------------------------------------------------------------

SEGMENT_CATEGORIES = TableSpec(
    comment="What each segment buys: its net spend per product category, the category's share of the "
            "segment's spend, how much more (or less) than all customers it leans to the category, and margin.",
    columns=(
        Col("segment_id", IntegerType(), "Segment number"),
        Col("segment_name", StringType(), "Marketing name of the segment"),
        Col("category", StringType(), "Product category (Uncategorised: code not in the catalogue)"),
        Col("net_revenue", DoubleType(), "Net revenue of the segment's customers in the category"),
        Col("share_of_segment_spend", DoubleType(), "Category's share of the segment's net revenue (0-1)"),
        Col("share_of_all_spend", DoubleType(), "Category's share of all customers' net revenue (0-1)"),
        Col("over_index", DoubleType(), "share_of_segment_spend / share_of_all_spend: above 1 = leans to it"),
        Col("margin", DoubleType(), "Net revenue minus unit cost x quantity, over lines with a known cost"),
        Col("margin_rate", DoubleType(), "margin / net revenue of the lines with a known cost"),
        Col("as_of_date", DateType(), "Reference date"),
    ),
)
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


SEGMENT_ATTRIBUTES = TableSpec(
    comment="Who is in each segment: the share of its customers with each value of each customer attribute.",
    columns=(
        Col("segment_id", IntegerType(), "Segment number"),
        Col("segment_name", StringType(), "Marketing name of the segment"),
        Col("attribute", StringType(), "gender, marital_status, region, education, loyalty_tier or age_band"),
        Col("value", StringType(), "The attribute's value (Unknown when not given)"),
        Col("customers", LongType(), "Customers of the segment with this value"),
        Col("share_of_segment", DoubleType(), "Their share of the segment's customers (0-1)"),
        Col("share_of_all", DoubleType(), "Share of all customers with this value (0-1)"),
        Col("as_of_date", DateType(), "Reference date"),
    ),
)


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
