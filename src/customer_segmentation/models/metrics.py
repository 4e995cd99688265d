"""Clustering quality measured in Spark, exactly, without collecting the points.

Two aggregation passes give every metric of any number of clusterings at once (a sweep's
candidates measured together, not one set of jobs per candidate and metric). The first pass
sums, per clustering and cluster, the points, their coordinates and their squared norms: the
centroids and each cluster's mean squared distance to its centroid. The second gives each
point its squared distance to every centroid of its clustering and sums, per cluster, the
distances to the own centroid (Davies–Bouldin), their squares (WCSS, Calinski–Harabasz) and
the points' silhouettes. Only k-sized summaries reach the driver; definitions are those of
`sklearn.metrics`. The silhouette uses squared Euclidean distance, for which the mean distance
from a point to a cluster follows from the cluster's summary: the exact formula of Spark's
`ClusteringEvaluator` (not sklearn's default Euclidean), hence its name `silhouette_sq_euclidean`.
"""

from __future__ import annotations

import math
import operator
from functools import reduce

import numpy as np
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


def _squared_distance(x: list[Column], centre: Column) -> Column:
    """Squared distance from the point's coordinates `x` to `centre` (an array; null if it is null).

    Written out coordinate by coordinate rather than with array lambdas: Spark interprets
    higher-order functions row by row but compiles arithmetic: both passes over 21 clusterings of
    44,136 customers (the 10M-line size) took 8.0-9.0 s with lambdas and 2.3-2.9 s written out, warm,
    with the same sums to the last bit (BENCHMARKS.md)."""
    return reduce(operator.add, [(x[i] - centre[i]) * (x[i] - centre[i]) for i in range(len(x))])


def cluster_summaries(points: DataFrame, dimensions: int, group_col: str, features_col: str = "features",
                      prediction_col: str = "prediction",
                      value_col: str | None = None) -> dict[object, dict[int, dict]]:
    """Per clustering (`group_col`) and cluster: size, centroid, sums of distances, squared distances
    and silhouettes of its points, and the sum of `value_col` (e.g. net revenue) if given."""
    value = F.col(value_col).cast("double") if value_col else F.lit(0.0)
    arrays = points.select(F.col(group_col).alias("grp"), F.col(prediction_col).cast("int").alias("cluster"),
                           vector_to_array(features_col).alias("x"), value.alias("value"))
    x = [F.col("x")[i] for i in range(dimensions)]
    first_pass = arrays.groupBy("grp", "cluster").agg(
        F.count(F.lit(1)).alias("size"),
        F.sum("value").alias("value"),
        F.sum(reduce(operator.add, [v * v for v in x])).alias("norm2_sum"),
        *[F.sum(x[i]).alias(f"s{i}") for i in range(dimensions)],
    ).collect()
    clusters: dict[object, dict[int, dict]] = {}
    for row in sorted(first_pass, key=lambda r: r["cluster"]):
        centroid = np.array([row[f"s{i}"] / row["size"] for i in range(dimensions)])
        # Mean squared distance of the cluster's points to its centroid: E|y|^2 - |mean|^2.
        clusters.setdefault(row["grp"], {})[row["cluster"]] = {
            "size": row["size"], "value": row["value"], "centroid": centroid,
            "scatter": max(row["norm2_sum"] / row["size"] - float(centroid @ centroid), 0.0)}
    layout = "grp {}, ids array<int>, sizes array<bigint>, centres array<array<double>>, scatters array<double>"
    stats = points.sparkSession.createDataFrame(
        [(grp, list(cs), [c["size"] for c in cs.values()], [c["centroid"].tolist() for c in cs.values()],
          [c["scatter"] for c in cs.values()]) for grp, cs in clusters.items()],
        layout.format(arrays.schema["grp"].dataType.simpleString()))
    most = max(len(cs) for cs in clusters.values())
    own = F.array_position("ids", F.col("cluster")).cast("int")  # 1-based, as element_at
    # Mean squared distance from the point to every point of each cluster: to the centroid plus the
    # scatter; null past the clustering's own clusters. Each step is its own projection, so the
    # compiled code computes every distance once instead of once per use.
    to_clusters = [_squared_distance(x, F.try_element_at("centres", F.lit(j + 1)))
                   + F.try_element_at("scatters", F.lit(j + 1)) for j in range(most)]
    to_centres = arrays.join(F.broadcast(stats), "grp").select(
        "grp", "cluster", own.alias("own"), F.element_at("sizes", own).alias("own_size"),
        F.array(*to_clusters).alias("to_clusters"), _squared_distance(x, F.element_at("centres", own)).alias("d2"))
    own, own_size = F.col("own"), F.col("own_size")
    # The nearest other cluster (`least` skips nulls, and needs two arguments even for one cluster).
    nearest = F.least(*[F.when(own != j + 1, F.element_at("to_clusters", j + 1)) for j in range(most)], F.lit(None))
    inside = F.when(own_size > 1, F.element_at("to_clusters", own) * own_size / (own_size - 1))
    point_distances = to_centres.select("grp", "cluster", "d2", "own_size", nearest.alias("nearest"),
                                        inside.alias("inside"))
    inside, nearest = F.col("inside"), F.col("nearest")
    silhouette = (F.when((own_size == 1) | nearest.isNull(), 0.0)
                  .when(inside < nearest, 1 - inside / nearest)
                  .when(inside > nearest, nearest / inside - 1).otherwise(0.0))
    second_pass = (point_distances.groupBy("grp", "cluster")
                   .agg(F.sum(F.sqrt("d2")).alias("distance_sum"), F.sum("d2").alias("d2_sum"),
                        F.sum(silhouette).alias("silhouette_sum"))
                   .collect())
    for row in second_pass:
        clusters[row["grp"]][row["cluster"]].update(
            distance_sum=row["distance_sum"], squared_distance_sum=row["d2_sum"], silhouette_sum=row["silhouette_sum"])
    return clusters


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


def sweep_metrics(points: DataFrame, dimensions: int, group_col: str, features_col: str = "features",
                  prediction_col: str = "prediction") -> dict[object, dict[str, float]]:
    """WCSS, Davies–Bouldin, Calinski–Harabasz, silhouette and segment shares of every clustering in
    `points` (one per value of `group_col`), in two Spark queries for all of them."""
    return {group: summary_metrics(summaries)
            for group, summaries in cluster_summaries(points, dimensions, group_col, features_col,
                                                      prediction_col).items()}


def segment_shares(summaries: dict[int, dict]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Each segment's share of the points and of the summed value, largest segment first. Value
    shares are undefined (empty) unless the total value is positive."""
    ordered = sorted(summaries.values(), key=lambda s: -s["size"])
    points = sum(s["size"] for s in ordered)
    value = sum(s["value"] for s in ordered)
    return (tuple(s["size"] / points for s in ordered),
            tuple(s["value"] / value for s in ordered) if value > 0 else ())


def cluster_metrics(points: DataFrame, dimensions: int, features_col: str = "features",
                    prediction_col: str = "prediction") -> dict[str, float]:
    """The metrics of one clustering."""
    return sweep_metrics(points.withColumn("_clustering", F.lit(0)), dimensions, "_clustering", features_col,
                         prediction_col)[0]


def summary_metrics(summaries: dict[int, dict]) -> dict[str, float]:
    """The metrics of one clustering from its cluster summaries."""
    shares, value_shares = segment_shares(summaries)
    result = {
        "segments_found": float(len(summaries)),
        "wcss": float(sum(s["squared_distance_sum"] for s in summaries.values())),
        "smallest_segment_share": shares[-1],
        "largest_segment_share": shares[0],
    }
    if value_shares:
        result["smallest_segment_revenue_share"] = value_shares[-1]
    if len(summaries) >= 2:
        result["davies_bouldin"] = davies_bouldin(summaries)
        result["calinski_harabasz"] = calinski_harabasz(summaries)
        points = sum(s["size"] for s in summaries.values())
        result["silhouette_sq_euclidean"] = float(sum(s["silhouette_sum"] for s in summaries.values()) / points)
    return result
