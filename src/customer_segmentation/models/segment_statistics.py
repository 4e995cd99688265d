"""Per-segment aggregates of scored customers: sizes, feature statistics, names, projections.

Inputs are Spark DataFrames of customers with a `segment_id`; outputs are small (one row per
segment, or binned counts), so they can feed plots, MLflow artifacts and the report.
"""

from __future__ import annotations

import pandas as pd
from pyspark.ml.feature import PCA
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..core.rules import segment_catalogue
from ..gold.features import RULE_SEGMENT_ID
from . import naming
from .naming import SegmentName

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
BOX_FEATURES = ("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days", "distinct_products")
PROJECTION_BINS = 40


def name_segments(scored: DataFrame) -> dict[int, SegmentName]:
    """Names of the model's segments, from their customers' standings among the modelled customers,
    and the rule segment's own; scored: customer features with segment_id."""
    modelled = scored.where(F.col("segment_id") != RULE_SEGMENT_ID)
    profiles = naming.segment_profiles(modelled.select("customer_id", "segment_id"),
                                       naming.customer_standings(modelled))
    rule = segment_catalogue().without_net_purchases
    return {**naming.assign_names(profiles), RULE_SEGMENT_ID: SegmentName(rule.name, rule.action)}


def per_segment(scored: DataFrame, features: list[str], *extra) -> DataFrame:
    """One row per segment: `extra` aggregates, then the mean and median of each feature."""
    return scored.groupBy("segment_id").agg(*extra, *[F.avg(f).alias(f"mean_{f}") for f in features],
                                            *[F.percentile(f, 0.5).alias(f"median_{f}") for f in features])


def feature_statistics(scored: DataFrame, features: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per segment: mean and median of each feature; and the mean and std over all customers."""
    segments = per_segment(scored, features).toPandas().set_index("segment_id").sort_index()
    overall = scored.agg(*[F.avg(f).alias(f"mean_{f}") for f in features],
                         *[F.stddev_pop(f).alias(f"std_{f}") for f in features]).toPandas()
    means = segments[[f"mean_{f}" for f in features]].set_axis(features, axis=1)
    medians = segments[[f"median_{f}" for f in features]].set_axis(features, axis=1)
    return means, medians, overall


def box_statistics(scored: DataFrame, names: dict[int, SegmentName], features=BOX_FEATURES) -> dict:
    quantiles = scored.groupBy("segment_id").agg(
        *[F.percentile(f, list(QUANTILES)).alias(f) for f in features]).collect()
    by_segment = {row["segment_id"]: row for row in quantiles}
    return {f: {names[s].name: tuple(by_segment[s][f]) for s in sorted(by_segment)} for f in features}


def projection_data(prepared: DataFrame, seed: int, names: dict[int, SegmentName]):
    """Binned 2-D principal-component projection: counts per (segment, cell), plus segment centroids."""
    pca = PCA(k=2, inputCol="features", outputCol="pc").fit(prepared)
    explained = tuple(float(v) for v in pca.explainedVariance.toArray()[:2])
    projected = pca.transform(prepared).select(
        "segment_id", vector_to_array("pc")[0].alias("x"), vector_to_array("pc")[1].alias("y"))
    bounds = projected.agg(F.min("x"), F.max("x"), F.min("y"), F.max("y")).first()
    x_low, x_high, y_low, y_high = (float(v) for v in bounds)
    x_step = max((x_high - x_low) / PROJECTION_BINS, 1e-9)
    y_step = max((y_high - y_low) / PROJECTION_BINS, 1e-9)
    bins = (projected.groupBy("segment_id",
                              F.floor((F.col("x") - x_low) / x_step).alias("bx"),
                              F.floor((F.col("y") - y_low) / y_step).alias("by"))
            .agg(F.count("*").alias("customers")).toPandas())
    bins["x"] = x_low + (bins["bx"] + 0.5) * x_step
    bins["y"] = y_low + (bins["by"] + 0.5) * y_step
    centroids = projected.groupBy("segment_id").agg(F.avg("x").alias("x"), F.avg("y").alias("y")).toPandas()
    for frame in (bins, centroids):
        frame["segment_name"] = frame["segment_id"].map(lambda s: names[s].name)
    return bins, centroids.sort_values("segment_id"), explained


def segment_sizes(scored: DataFrame, names: dict[int, SegmentName]) -> pd.DataFrame:
    sizes = scored.groupBy("segment_id").agg(F.count("*").alias("customers")).toPandas()
    sizes["share"] = sizes["customers"] / sizes["customers"].sum()
    sizes["segment_name"] = sizes["segment_id"].map(lambda s: names[s].name)
    return sizes.sort_values("customers", ascending=False).reset_index(drop=True)
