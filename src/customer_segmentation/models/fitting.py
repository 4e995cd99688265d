"""Fitting the candidate models: k-means (best of several seeded starts), bisecting k-means and
Gaussian mixtures; their segments numbered by size; each candidate measured; what is a skip."""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.clustering import BisectingKMeans, GaussianMixture, KMeans
from pyspark.ml.feature import SQLTransformer, VectorAssembler
from pyspark.ml.stat import Summarizer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..core.settings import Settings
from ..gold.features import NET_PURCHASES, RULE_SEGMENT_ID
from . import metrics
from .preparation import FeaturePlan
from .selection import Candidate

KMEANS_TRIAL_ITERATIONS = 10
# Spark stops a Gaussian mixture when the total log-likelihood moves by less than `tol`, so a fixed
# tol gets stricter as customers grow (1e-4 ran most k on the real data to the 100-iteration cap).
# scikit-learn's default stops at 1e-3 per sample; the same criterion here, scaled to the customers.
GMM_TOLERANCE_PER_CUSTOMER = 1e-3
# Java exceptions that say the data cannot be fitted this way (a property of the candidate): a fit
# failing with anything else (out of memory, a lost executor, a bug) fails the task.
CANDIDATE_FAILURES = ("java.lang.IllegalArgumentException", "breeze.linalg.NotConvergedException",
                      "breeze.linalg.MatrixSingularException", "org.apache.spark.ml.optim.SingularMatrixException")


def estimator(algorithm: str, k: int, seed: int, customers: int):
    if algorithm == "kmeans":
        # The default solver, "auto", chooses on every fit with a Spark query over the data, and
        # chooses "row" for these vectors: named outright, each fit is the same and runs two jobs fewer.
        return KMeans(k=k, seed=seed, featuresCol="features", predictionCol="segment_id", maxIter=50, solver="row")
    if algorithm == "bisecting_kmeans":
        # Spark splits a cluster by nudging its centre in proportion to the centre's norm, and the
        # centre of standardised data is the origin: it would never split. A constant extra
        # coordinate moves the centre off the origin and changes no distance between customers.
        # Every split runs all maxIter iterations (there is no convergence test); on the real data
        # 20 (Spark's default) gives WCSS within 0.02% of 30 with a third fewer jobs.
        return Pipeline(stages=[
            SQLTransformer(statement="SELECT *, 1.0 AS bisecting_anchor FROM __THIS__"),
            VectorAssembler(inputCols=["features", "bisecting_anchor"], outputCol="bisecting_features"),
            BisectingKMeans(k=k, seed=seed, featuresCol="bisecting_features", predictionCol="segment_id",
                            maxIter=20, minDivisibleClusterSize=1.0),
        ])
    return GaussianMixture(k=k, seed=seed, featuresCol="features", predictionCol="segment_id",
                           probabilityCol="segment_probability", maxIter=100,
                           tol=GMM_TOLERANCE_PER_CUSTOMER * customers)


def fit_best_start(prepared: DataFrame, algorithm: str, k: int, customers: int, settings: Settings):
    """The fitted model; for k-means the best of `kmeans_starts` seeded starts.

    One k-means start often stops in a poor local optimum; trying several is the usual remedy
    (scikit-learn's n_init). Every start runs KMEANS_TRIAL_ITERATIONS iterations, and only the
    one with the lowest WCSS then runs to convergence: its seed repeats the same first iterations,
    so the refit continues that start. Seeds are seed, seed+1, ...: reruns give the same model.
    Starts that reach the same optimum differ only in the last bits of their WCSS (and may number
    the segments differently), so among starts within a relative 1e-9 of the best the first wins.
    """
    full = estimator(algorithm, k, settings.seed, customers)
    if algorithm != "kmeans" or settings.kmeans_starts == 1:
        return full.fit(prepared)
    trials = [estimator(algorithm, k, settings.seed + start, customers).setMaxIter(KMEANS_TRIAL_ITERATIONS)
              .fit(prepared) for start in range(settings.kmeans_starts)]
    best = min(trial.summary.trainingCost for trial in trials)
    chosen = next(trial for trial in trials if trial.summary.trainingCost <= best + abs(best) * 1e-9)
    if chosen.summary.numIter < KMEANS_TRIAL_ITERATIONS:  # converged within the trial: nothing to continue
        return chosen.copy({chosen.maxIter: full.getMaxIter()})
    return full.setSeed(chosen.getSeed()).fit(prepared)


def number_segments(model, prepared: DataFrame) -> PipelineModel:
    """The champion with its segments renumbered by size, largest first, as segment 0.

    An algorithm numbers its segments in whatever order its fit found them, so two fits that
    reach the same segments (a rerun whose vectors differ in their last bits, another start)
    can number them differently. Published numbers follow the segments instead: by customer
    count, then by centre, rounded so that last-bit noise cannot reorder them. The renumbering
    is a SQL stage of the model, so whatever scores with the registered model gets these numbers.
    The stage also names the number `prediction`, the column MLflow's generic (pyfunc) interface
    returns: `mlflow.pyfunc.load_model(...).predict` and `spark_udf` score with the same numbers.
    It also gives customers without net purchases, whom the model was not fitted on, their rule
    segment (RULE_SEGMENT_ID), so every scorer segments every customer as `publish` does.
    """
    scored = model.transform(prepared)
    sizes = (scored.groupBy("segment_id")
             .agg(F.count("*").alias("customers"), Summarizer.mean(F.col("features")).alias("centre"))
             .collect())
    ranked = sorted(sizes, key=lambda r: (-r["customers"], [round(x, 6) for x in r["centre"]]))
    cases = " ".join(f"WHEN {row['segment_id']} THEN {number}" for number, row in enumerate(ranked))
    # A mixture's membership probabilities are in its own component order: not published with the new numbers.
    raw = ", ".join(c for c in ("segment_id", "segment_probability") if c in scored.columns)
    renumber = SQLTransformer(
        statement=f"SELECT *, segment_id AS prediction FROM (SELECT * EXCEPT ({raw}), "
                  f"CAST(CASE WHEN {NET_PURCHASES} THEN CASE segment_id {cases} END ELSE {RULE_SEGMENT_ID} END "
                  f"AS INT) AS segment_id FROM __THIS__)")
    return PipelineModel(stages=[model, renumber])


def model_inputs(plan: FeaturePlan) -> list[str]:
    """Columns the registered model reads: its features, and monetary for the rule segment."""
    return plan.features + ([] if "monetary" in plan.features else ["monetary"])


@dataclass
class Fitted:
    candidate: Candidate
    model: object | None = None


def candidate_failure(error: Exception) -> str | None:
    """Why the data cannot be fitted by this candidate, when `error` says so; None otherwise."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import IllegalArgumentException

    def first_line(text: str | None) -> str:
        return (text or "").strip().splitlines()[0][:300] if (text or "").strip() else ""

    if isinstance(error, IllegalArgumentException):  # a JVM require() failed: pyspark converts it
        return first_line(str(error)) or type(error).__name__
    if isinstance(error, Py4JJavaError):
        cause = error.java_exception
        while cause is not None:
            name = cause.getClass().getName()
            if name in CANDIDATE_FAILURES:
                return first_line(cause.getMessage()) or name.rsplit(".", 1)[-1]
            cause = cause.getCause()
    return None


def fit_one(prepared: DataFrame, algorithm: str, k: int, customers: int, settings: Settings) -> Fitted:
    """Fit one candidate. A candidate the data cannot support is skipped with the reason; any
    other failure (out of memory, a lost executor, a bug) is raised and fails the task."""
    if customers <= k:
        return Fitted(Candidate(algorithm, k, {}, f"only {customers} customers with net purchases: k={k} needs "
                                                  "more customers than segments"))
    try:
        return Fitted(Candidate(algorithm, k, {}), fit_best_start(prepared, algorithm, k, customers, settings))
    except Exception as error:
        reason = candidate_failure(error)
        if reason is None:
            raise
        return Fitted(Candidate(algorithm, k, {}, f"fit failed: {reason}"))


def measure(prepared: DataFrame, fits: list[Fitted], dimensions: int) -> list[Fitted]:
    """The fits with their metrics, all measured in one pair of Spark queries; a fit that left
    segments empty is skipped."""
    models = {index: fitted.model for index, fitted in enumerate(fits) if fitted.model is not None}
    if not models:
        return fits
    scored = reduce(DataFrame.unionByName, [
        model.transform(prepared).select(F.lit(index).alias("candidate"), "features", "segment_id", "monetary")
        for index, model in models.items()])
    summaries = metrics.cluster_summaries(scored, dimensions, "candidate", prediction_col="segment_id",
                                          value_col="monetary")
    out = []
    for index, fitted in enumerate(fits):
        c = fitted.candidate
        if index not in models:
            out.append(fitted)
            continue
        values = metrics.summary_metrics(summaries[index])
        shares = metrics.segment_shares(summaries[index])
        if c.algorithm == "gaussian_mixture":
            values["log_likelihood"] = float(fitted.model.summary.logLikelihood)
        # Fewer segments than asked: e.g. identical customers, or a mixture leaving components empty.
        skipped = (f"filled only {int(values['segments_found'])} of {c.k} segments"
                   if values["segments_found"] < c.k else None)
        out.append(Fitted(Candidate(c.algorithm, c.k, values, skipped, *shares), None if skipped else fitted.model))
    return out
