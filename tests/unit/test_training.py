"""Model fitting: k-means continues the best of several seeded starts; segments are numbered by size."""

import random
from types import SimpleNamespace

import pytest
from pyspark.ml.linalg import Vectors

from customer_segmentation.core.settings import Settings
from customer_segmentation.models import fitting as training
from customer_segmentation.models.fitting import estimator, fit_best_start, number_segments


def _points(spark):
    """Points spread evenly over a square: no clear groups, so k-means starts end in different optima."""
    rng = random.Random(3)
    points = [Vectors.dense(rng.random(), rng.random()) for _ in range(300)]
    return spark.createDataFrame([(p,) for p in points], ["features"]).coalesce(1).cache()


def test_kmeans_continues_the_start_with_the_lowest_wcss_after_the_trial(spark):
    data = _points(spark)
    settings = Settings(kmeans_starts=6, seed=1)
    seeds = [settings.seed + s for s in range(6)]
    trial_costs = [estimator("kmeans", 5, seed, 300).setMaxIter(training.KMEANS_TRIAL_ITERATIONS).fit(data)
                   .summary.trainingCost for seed in seeds]
    assert len({round(cost, 6) for cost in trial_costs}) > 1, "the data must give the starts different costs"
    chosen_seed = seeds[trial_costs.index(min(trial_costs))]
    best = fit_best_start(data, "kmeans", 5, 300, settings)
    assert best.getSeed() == chosen_seed
    # Continuing the chosen start is the full fit of its seed, with the full iteration budget.
    assert best.summary.trainingCost == estimator("kmeans", 5, chosen_seed, 300).fit(data).summary.trainingCost
    assert best.getMaxIter() == estimator("kmeans", 5, chosen_seed, 300).getMaxIter()


def test_one_start_is_the_seeded_fit(spark):
    data = _points(spark)
    settings = Settings(kmeans_starts=1, seed=7)
    assert fit_best_start(data, "kmeans", 3, 300, settings).getSeed() == 7


def test_starts_that_reach_the_same_optimum_keep_the_first(monkeypatch):
    # Costs of one optimum differ in their last bits between runs; the choice must not follow that noise.
    costs = {1: 10.0 + 1e-12, 2: 10.0, 3: 12.0}

    class Start:
        maxIter = "maxIter"

        def __init__(self, seed):
            self.seed = seed
            self.summary = SimpleNamespace(trainingCost=costs[seed], numIter=3)  # converged in the trial

        def setMaxIter(self, _):
            return self

        def fit(self, _):
            return self

        def copy(self, _):
            return self

        def getMaxIter(self):
            return 50

    monkeypatch.setattr(training, "estimator", lambda algorithm, k, seed, customers: Start(seed))
    assert fit_best_start(None, "kmeans", 2, 10, Settings(kmeans_starts=3, seed=1)).seed == 1
    costs[1] = 10.1
    assert fit_best_start(None, "kmeans", 2, 10, Settings(kmeans_starts=3, seed=1)).seed == 2


def test_gaussian_mixture_stops_at_the_same_change_per_customer_whatever_the_customer_count(spark):
    # Spark's tol bounds the change of the total log-likelihood; a fixed figure would get stricter
    # with every customer added.
    small, large = (estimator("gaussian_mixture", 3, 1, n).getTol() for n in (1_000, 100_000))
    assert small == pytest.approx(1.0) and large == pytest.approx(100.0)


def _groups(spark):
    """Three separate groups of 60, 40 and 20 customers, in an order unrelated to their sizes."""
    rng = random.Random(5)
    rows = [(f"c{centre}-{i}", Vectors.dense(centre + rng.gauss(0, 0.1), rng.gauss(0, 0.1)), 10.0)
            for centre, size in ((10.0, 20), (0.0, 40), (5.0, 60)) for i in range(size)]
    return spark.createDataFrame(rows, ["customer_id", "features", "monetary"]).coalesce(1).cache()


@pytest.mark.parametrize("algorithm", ["kmeans", "bisecting_kmeans", "gaussian_mixture"])
def test_segments_are_numbered_by_size_whatever_order_the_fit_found_them_in(spark, algorithm):
    data = _groups(spark)

    def labels(df):
        return tuple(r["segment_id"] for r in df.orderBy("customer_id").collect())

    # Only fits that found the three groups: a mixture's start can also settle elsewhere. Two seeds
    # for bisecting k-means, which splits the same way whatever its seed (below).
    seeds = range(1, 3) if algorithm == "bisecting_kmeans" else range(1, 9)
    fits = [fit for fit in (estimator(algorithm, 3, seed, 120).fit(data) for seed in seeds)
            if sorted(labels(fit.transform(data)).count(s) for s in range(3)) == [20, 40, 60]]
    numbered = [number_segments(fit, data).transform(data) for fit in fits]
    if algorithm != "bisecting_kmeans":  # bisecting k-means splits the same way whatever its seed
        assert len({labels(fit.transform(data)) for fit in fits}) > 1, "the seeds must number the segments differently"
    assert len({labels(df) for df in numbered}) == 1
    sizes = {r["segment_id"]: r["count"] for r in numbered[0].groupBy("segment_id").count().collect()}
    assert sizes == {0: 60, 1: 40, 2: 20}
    assert "segment_probability" not in numbered[0].columns
    assert dict(numbered[0].dtypes)["segment_id"] == "int"


def test_customers_without_net_purchases_get_the_rule_segment_from_the_model(spark):
    data = _groups(spark)
    model = number_segments(estimator("kmeans", 3, 1, 120).fit(data), data)
    returner = spark.createDataFrame([("r", Vectors.dense(5.0, 0.0), -4.0), ("z", Vectors.dense(5.0, 0.0), 0.0)],
                                     ["customer_id", "features", "monetary"])
    assert {r["segment_id"] for r in model.transform(returner).collect()} == {-1}
    assert {r["segment_id"] for r in model.transform(data).collect()} == {0, 1, 2}


def test_bisecting_kmeans_fills_k_segments_on_mean_centred_features(spark):
    # Standardised features have their centre at the origin, where Spark's split would never move.
    rng = random.Random(8)
    rows = [(Vectors.dense(x - 5.0, y),) for centre in (0.0, 5.0, 10.0)
            for x, y in ((centre + rng.gauss(0, 0.3), rng.gauss(0, 0.3)) for _ in range(50))]
    data = spark.createDataFrame(rows, ["features"])
    assert abs(sum(r["features"][0] for r in data.collect())) < 10, "centred on the origin"
    for k in (2, 3, 4):
        fitted = estimator("bisecting_kmeans", k, 1, 150).fit(data)
        assert fitted.transform(data).select("segment_id").distinct().count() == k


def test_only_failures_of_the_candidate_itself_are_skips(spark, monkeypatch):
    from pyspark.errors import IllegalArgumentException

    data = _groups(spark)
    settings = Settings(kmeans_starts=1)

    def failing(error):
        def fit(*args):
            raise error
        return fit

    # The data cannot be fitted this way (a JVM require() failed, here without a message): a skip.
    monkeypatch.setattr(training, "fit_best_start", failing(IllegalArgumentException(message="")))
    skipped = training.fit_one(data, "kmeans", 3, 120, settings)
    assert skipped.model is None and skipped.candidate.skipped_reason == "fit failed: IllegalArgumentException"
    # Anything else (a lost executor, out of memory, a bug) is not a property of the candidate.
    monkeypatch.setattr(training, "fit_best_start", failing(RuntimeError("executor lost")))
    with pytest.raises(RuntimeError, match="executor lost"):
        training.fit_one(data, "kmeans", 3, 120, settings)
    reason = training.fit_one(data, "kmeans", 120, 120, settings).candidate.skipped_reason
    assert reason.startswith("only 120 customers with net purchases: k=120 needs more"), "a segment per customer"
