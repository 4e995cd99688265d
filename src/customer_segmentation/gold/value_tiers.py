"""Value tiers: recency, frequency and net revenue each clustered on its own (1-D k-means, k = 4),
the clusters scored 1-4 so that higher is better, summed, and mapped to Low, Mid or High."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from pyspark.ml.clustering import KMeans
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .enrichment import signed_log1p

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
