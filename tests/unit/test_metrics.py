"""Spark's exact clustering metrics against sklearn.metrics on the same points."""

from functools import reduce

import numpy as np
import pytest
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.linalg import Vectors
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

from customer_segmentation.models import metrics


def _shapes():
    rng = np.random.default_rng(7)
    blobs = np.concatenate([rng.normal(c, 0.5, (40, 3)) for c in ((0, 0, 0), (5, 5, 0), (0, 6, 6))])
    blob_labels = np.repeat([0, 1, 2], 40)
    skewed = np.concatenate([rng.lognormal(0, 1, (70, 2)), rng.normal(20, 3, (9, 2))])
    skewed_labels = np.array([0] * 70 + [1] * 9)
    singleton = np.concatenate([rng.normal(0, 1, (30, 4)), [[40.0, 40.0, 40.0, 40.0]], rng.normal(8, 1, (25, 4))])
    singleton_labels = np.array([0] * 30 + [2] + [1] * 25)
    uneven = rng.normal(0, 1, (60, 5))
    uneven_labels = rng.integers(0, 6, 60)
    big_values = rng.normal(1e5, 1e3, (50, 2))
    big_labels = (big_values[:, 0] > 1e5).astype(int)
    return {"blobs": (blobs, blob_labels), "skewed": (skewed, skewed_labels),
            "singleton cluster": (singleton, singleton_labels), "overlapping, six clusters": (uneven, uneven_labels),
            "large magnitudes": (big_values, big_labels)}


SHAPES = _shapes()


def _points(spark, x, labels):
    return spark.createDataFrame([(Vectors.dense(row.tolist()), int(label)) for row, label in zip(x, labels)],
                                 ["features", "prediction"])


@pytest.mark.parametrize("shape", list(SHAPES))
def test_davies_bouldin_calinski_harabasz_and_silhouette_match_sklearn(spark, shape):
    x, labels = SHAPES[shape]
    result = metrics.cluster_metrics(_points(spark, x, labels), x.shape[1])
    assert result["davies_bouldin"] == pytest.approx(davies_bouldin_score(x, labels), rel=1e-9, abs=1e-9)
    assert result["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(x, labels), rel=1e-9, abs=1e-9)
    assert result["silhouette_sq_euclidean"] == pytest.approx(
        silhouette_score(x, labels, metric="sqeuclidean"), rel=1e-9, abs=1e-9)
    centroids = {c: x[labels == c].mean(axis=0) for c in set(labels)}
    wcss = sum(((x[labels == c] - centroid) ** 2).sum() for c, centroid in centroids.items())
    assert result["wcss"] == pytest.approx(wcss, rel=1e-9)
    sizes = np.bincount(labels)[np.bincount(labels) > 0]
    assert result["smallest_segment_share"] == pytest.approx(sizes.min() / len(labels))
    assert result["largest_segment_share"] == pytest.approx(sizes.max() / len(labels))
    assert result["segments_found"] == len(sizes)


def test_a_single_cluster_has_no_separation_metrics(spark):
    x = np.arange(20, dtype=float).reshape(10, 2)
    result = metrics.cluster_metrics(_points(spark, x, np.zeros(10, int)), 2)
    assert result["segments_found"] == 1 and "davies_bouldin" not in result


def test_euclidean_silhouette_on_a_seeded_sample(spark):
    x, labels = SHAPES["blobs"]
    points = _points(spark, x, labels)
    value, size = metrics.silhouette_euclidean_sample(points, sample_size=1000, seed=3)
    assert size == len(labels)  # the sample holds everything when the data is small
    assert value == pytest.approx(silhouette_score(x, labels, metric="euclidean"), rel=1e-9)
    small_value, small_size = metrics.silhouette_euclidean_sample(points, sample_size=50, seed=3)
    assert small_size == 50
    assert (small_value, small_size) == metrics.silhouette_euclidean_sample(points, sample_size=50, seed=3)


def test_a_sweep_measures_every_clustering_as_if_it_were_alone(spark):
    # The candidates of a sweep, several labellings of the same points, are measured together:
    # each must get exactly its own figures.
    x, labels = SHAPES["overlapping, six clusters"]
    sweep = {"six": labels, "two": labels % 2, "three": labels % 3, "one": np.zeros_like(labels)}
    frames = [_points(spark, x, y).withColumn("candidate", F.lit(name)) for name, y in sweep.items()]
    together = metrics.sweep_metrics(reduce(DataFrame.unionByName, frames), x.shape[1], "candidate")
    assert set(together) == set(sweep)
    for name, y in sweep.items():
        alone = metrics.cluster_metrics(_points(spark, x, y), x.shape[1])
        assert together[name] == pytest.approx(alone, rel=1e-12, abs=1e-12), name


def test_the_silhouette_is_spark_s_squared_euclidean_one(spark):
    x, labels = SHAPES["overlapping, six clusters"]
    points = _points(spark, x, labels)
    evaluator = ClusteringEvaluator(metricName="silhouette", distanceMeasure="squaredEuclidean")
    assert metrics.cluster_metrics(points, x.shape[1])["silhouette_sq_euclidean"] == pytest.approx(
        evaluator.evaluate(points), rel=1e-9)
