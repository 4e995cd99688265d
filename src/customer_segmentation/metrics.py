"""Clustering quality measured in Spark, exactly, without collecting the points.

Two aggregation passes over the points (per-cluster counts and sums, then per-cluster distances
to the centroid) give everything needed for WCSS, Davies–Bouldin and Calinski–Harabasz with the
same definitions as `sklearn.metrics`; only k-sized summaries reach the driver. The silhouette
comes from Spark's `ClusteringEvaluator`, which is exact for squared Euclidean distance (not
sklearn's default Euclidean), hence its name `silhouette_sq_euclidean`.
"""

from __future__ import annotations

import math

import numpy as np
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def cluster_summaries(points: DataFrame, dimensions: int, features_col: str = "features",
                      prediction_col: str = "prediction") -> dict[int, dict]:
    """Per cluster: size, centroid, sum of distances and of squared distances to the centroid."""
    arrays = points.select(F.col(prediction_col).cast("int").alias("cluster"),
                           vector_to_array(features_col).alias("x"))
    first_pass = arrays.groupBy("cluster").agg(
        F.count(F.lit(1)).alias("size"),
        *[F.sum(F.col("x")[i]).alias(f"s{i}") for i in range(dimensions)],
    ).collect()
    centroids = {row["cluster"]: [row[f"s{i}"] / row["size"] for i in range(dimensions)] for row in first_pass}
    centroid_frame = points.sparkSession.createDataFrame(
        [(cluster, centroid) for cluster, centroid in centroids.items()], "cluster int, c array<double>")
    squared = F.aggregate(F.zip_with("x", "c", lambda a, b: (a - b) * (a - b)), F.lit(0.0), lambda acc, v: acc + v)
    second_pass = (arrays.join(F.broadcast(centroid_frame), "cluster")
                   .withColumn("d2", squared)
                   .groupBy("cluster").agg(F.sum(F.sqrt("d2")).alias("distance_sum"), F.sum("d2").alias("d2_sum"))
                   .collect())
    sizes = {row["cluster"]: row["size"] for row in first_pass}
    return {row["cluster"]: {"size": sizes[row["cluster"]], "centroid": np.array(centroids[row["cluster"]]),
                             "distance_sum": row["distance_sum"], "squared_distance_sum": row["d2_sum"]}
            for row in second_pass}


def davies_bouldin(summaries: dict[int, dict]) -> float:
    """As sklearn.metrics.davies_bouldin_score: mean over clusters of the worst (S_i + S_j) / M_ij."""
    clusters = sorted(summaries)
    scatter = np.array([summaries[c]["distance_sum"] / summaries[c]["size"] for c in clusters])
    centroids = np.array([summaries[c]["centroid"] for c in clusters])
    separation = np.sqrt(((centroids[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2))
    if np.allclose(scatter, 0) or np.allclose(separation, 0):
        return 0.0
    separation[separation == 0] = np.inf
    ratio = (scatter[:, None] + scatter[None, :]) / separation
    np.fill_diagonal(ratio, -np.inf)
    return float(np.mean(ratio.max(axis=1)))


def calinski_harabasz(summaries: dict[int, dict]) -> float:
    """As sklearn.metrics.calinski_harabasz_score: between / within dispersion, scaled by (n-k)/(k-1)."""
    sizes = np.array([s["size"] for s in summaries.values()], dtype=float)
    centroids = np.array([s["centroid"] for s in summaries.values()])
    n, k = sizes.sum(), len(sizes)
    overall = (centroids * sizes[:, None]).sum(axis=0) / n
    between = float((sizes * ((centroids - overall) ** 2).sum(axis=1)).sum())
    within = float(sum(s["squared_distance_sum"] for s in summaries.values()))
    return 1.0 if within == 0 else between * (n - k) / (within * (k - 1))


def silhouette_sq_euclidean(points: DataFrame, features_col: str = "features",
                            prediction_col: str = "prediction") -> float:
    evaluator = ClusteringEvaluator(featuresCol=features_col, predictionCol=prediction_col,
                                    metricName="silhouette", distanceMeasure="squaredEuclidean")
    return float(evaluator.evaluate(points))


def silhouette_euclidean_sample(points: DataFrame, sample_size: int, seed: int, features_col: str = "features",
                                prediction_col: str = "prediction") -> tuple[float, int]:
    """sklearn's Euclidean silhouette on a seeded random sample (exact on the sample); returns (value, size)."""
    from sklearn.metrics import silhouette_score

    total = points.count()
    fraction = min(1.0, 1.1 * sample_size / max(total, 1))
    sample = (points.sample(fraction=fraction, seed=seed).orderBy(F.rand(seed)).limit(sample_size)
              .select(vector_to_array(features_col).alias("x"), F.col(prediction_col).alias("y")).collect())
    labels = np.array([row["y"] for row in sample])
    if len(set(labels)) < 2 or len(labels) <= len(set(labels)):
        return math.nan, len(labels)
    return float(silhouette_score(np.array([row["x"] for row in sample]), labels, metric="euclidean")), len(labels)


def cluster_metrics(points: DataFrame, dimensions: int, features_col: str = "features",
                    prediction_col: str = "prediction") -> dict[str, float]:
    """WCSS, Davies–Bouldin, Calinski–Harabasz, silhouette and segment shares for one clustering."""
    summaries = cluster_summaries(points, dimensions, features_col, prediction_col)
    total = sum(s["size"] for s in summaries.values())
    result = {
        "segments_found": float(len(summaries)),
        "wcss": float(sum(s["squared_distance_sum"] for s in summaries.values())),
        "smallest_segment_share": min(s["size"] for s in summaries.values()) / total,
        "largest_segment_share": max(s["size"] for s in summaries.values()) / total,
    }
    if len(summaries) >= 2:
        result["davies_bouldin"] = davies_bouldin(summaries)
        result["calinski_harabasz"] = calinski_harabasz(summaries)
        result["silhouette_sq_euclidean"] = silhouette_sq_euclidean(points, features_col, prediction_col)
    return result
