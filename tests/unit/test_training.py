"""Model fitting: k-means keeps the best of several seeded starts."""

import random

from pyspark.ml.linalg import Vectors

from customer_segmentation.settings import Settings
from customer_segmentation.training import estimator, fit_best_start


def _points(spark):
    """Points spread evenly over a square: no clear groups, so k-means starts end in different optima."""
    rng = random.Random(3)
    points = [Vectors.dense(rng.random(), rng.random()) for _ in range(300)]
    return spark.createDataFrame([(p,) for p in points], ["features"]).coalesce(1).cache()


def test_kmeans_keeps_the_start_with_the_lowest_wcss(spark):
    data = _points(spark)
    settings = Settings(kmeans_starts=6, seed=1)
    single_costs = [estimator("kmeans", 5, settings.seed + s).fit(data).summary.trainingCost for s in range(6)]
    assert len({round(cost, 6) for cost in single_costs}) > 1, "the data must give the starts different optima"
    best = fit_best_start(data, "kmeans", 5, settings)
    assert best.summary.trainingCost == min(single_costs)
    assert best.getSeed() == settings.seed + single_costs.index(min(single_costs))


def test_one_start_is_the_seeded_fit(spark):
    data = _points(spark)
    settings = Settings(kmeans_starts=1, seed=7)
    assert fit_best_start(data, "kmeans", 3, settings).getSeed() == 7
