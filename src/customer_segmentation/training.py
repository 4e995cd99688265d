"""Task `train`: MLlib sweep over algorithms and k, exact metrics, MLflow tracking, champion model.

The features are prepared once (signed log1p, assembled, standardised) and checkpointed; every
candidate clusters the same vectors. Each candidate is a nested MLflow run with its
metrics and fitted model; the parent run holds the parameters, the figures, the metrics table
and the champion, registered with the alias `champion`.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import reduce
from pathlib import Path

import pandas as pd
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.clustering import BisectingKMeans, GaussianMixture, KMeans
from pyspark.ml.feature import SQLTransformer, StandardScaler, VectorAssembler
from pyspark.ml.stat import Correlation, Summarizer
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, BooleanType, DateType, DoubleType, IntegerType, StringType

from . import enrich, metrics, plots, profiling, tracking
from .console import say
from .errors import UserError
from .features import NET_PURCHASES, RULE_SEGMENT_ID, has_net_purchases
from .selection import Candidate, SelectionRule
from .settings import Settings
from .tables import Column as Col
from .tables import TableSpec, overwrite_table, table_version

PARALLEL_FITS = 3
KMEANS_TRIAL_ITERATIONS = 10
# Spark stops a Gaussian mixture when the total log-likelihood moves by less than `tol`, so a fixed
# tol gets stricter as customers grow (1e-4 ran most k on the real data to the 100-iteration cap).
# scikit-learn's default stops at 1e-3 per sample; the same criterion here, scaled to the customers.
GMM_TOLERANCE_PER_CUSTOMER = 1e-3
CUSTOMERS_PER_PARTITION = 200_000
ONE_HOT_WEIGHT = math.sqrt(0.5)
METRIC_NAMES = ("silhouette_sq_euclidean", "davies_bouldin", "calinski_harabasz", "wcss",
                "smallest_segment_share", "smallest_segment_revenue_share", "largest_segment_share", "segments_found",
                "log_likelihood")
# Java exceptions that say the data cannot be fitted this way (a property of the candidate): a fit
# failing with anything else (out of memory, a lost executor, a bug) fails the task.
CANDIDATE_FAILURES = ("java.lang.IllegalArgumentException", "breeze.linalg.NotConvergedException",
                      "breeze.linalg.MatrixSingularException", "org.apache.spark.ml.optim.SingularMatrixException")

CLUSTERING_METRICS = TableSpec(
    comment="One row per (training run, algorithm, k): every clustering metric and whether it became the "
            "champion. Holds the latest training for each as_of_date; MLflow keeps every run.",
    columns=(
        Col("as_of_date", DateType(), "Reference date of the features trained on"),
        Col("mlflow_run_id", StringType(), "Parent MLflow run of the training"),
        Col("candidate_run_id", StringType(), "Nested MLflow run of this candidate"),
        Col("algorithm", StringType(), "kmeans, bisecting_kmeans or gaussian_mixture"),
        Col("k", IntegerType(), "Number of segments asked for"),
        Col("silhouette_sq_euclidean", DoubleType(), "Silhouette with squared Euclidean distance (Spark, exact); "
                                                     "higher is better"),
        Col("davies_bouldin", DoubleType(), "Davies-Bouldin index (exact, same definition as sklearn); lower is better"),
        Col("calinski_harabasz", DoubleType(), "Calinski-Harabasz index (exact, as sklearn); higher is better"),
        Col("wcss", DoubleType(), "Within-cluster sum of squared distances to segment means (standardised units)"),
        Col("smallest_segment_share", DoubleType(), "Share of the modelled customers in the smallest segment"),
        Col("smallest_segment_revenue_share", DoubleType(), "Share of the modelled customers' net revenue held by "
                                                            "the smallest segment"),
        Col("largest_segment_share", DoubleType(), "Share of the modelled customers in the largest segment"),
        Col("segment_shares", ArrayType(DoubleType()), "Each segment's share of the modelled customers, largest "
                                                       "segment first"),
        Col("segment_revenue_shares", ArrayType(DoubleType()), "Each segment's share of their net revenue, in the "
                                                               "order of segment_shares"),
        Col("unactionable_segments", IntegerType(), "Segments below both minimums of the champion rule (customers "
                                                    "and net revenue); 0 = every segment actionable"),
        Col("segments_found", IntegerType(), "Non-empty segments the model produced"),
        Col("log_likelihood", DoubleType(), "Log-likelihood of the Gaussian mixture (null for other algorithms)"),
        Col("skipped_reason", StringType(), "Why the candidate could not be trained (null when it was)"),
        Col("is_champion", BooleanType(), "This candidate was chosen by the selection rule"),
    ),
)


@dataclass(frozen=True)
class FeaturePlan:
    """How the chosen feature columns become one vector, fixed at training time.

    Numeric features: signed log1p (tames skew, safe for zero and negative values), then
    standardised. Nullable ones (age, income, education level) take the training median where
    unknown, plus an `unknown` indicator. Categorical ones are one-hot encoded, each indicator
    weighted 1/sqrt(2) so that two different categories are as far apart as one standard deviation.
    """

    numeric: tuple[str, ...]
    medians: tuple[tuple[str, float], ...] = ()          # nullable numeric feature -> median
    categories: tuple[tuple[str, tuple[str, ...]], ...] = ()  # categorical feature -> observed values

    @property
    def features(self) -> list[str]:
        return list(self.numeric) + [name for name, _ in self.categories]

    @property
    def numeric_columns(self) -> list[str]:
        return [f"{f}__log" for f in self.numeric] + [f"{f}__unknown" for f, _ in self.medians]

    @property
    def indicator_columns(self) -> list[str]:
        return [f"{f}__{i}" for f, values in self.categories for i in range(len(values))]

    @property
    def dimensions(self) -> int:
        return len(self.numeric_columns) + len(self.indicator_columns)


def _sql_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def plan_features(df: DataFrame, features: list[str]) -> FeaturePlan:
    """The plan for `features` of `df`: medians of nullable numeric ones, values of categorical ones."""
    categorical = [f for f in features if f in enrich.CATEGORICAL_FEATURES]
    numeric = [f for f in features if f not in categorical]
    # One pass for the null counts and the category values (few per feature); medians only if needed.
    seen = df.agg(*[F.count_if(F.col(f).isNull()).alias(f"nulls:{f}") for f in numeric],
                  *[F.collect_set(f).alias(f"values:{f}") for f in categorical]).first().asDict()
    nullable = [f for f in numeric if seen[f"nulls:{f}"]]
    medians = (df.agg(*[F.percentile(f, 0.5).alias(f) for f in nullable]).first().asDict() if nullable else {})
    values = {f: tuple(sorted(seen[f"values:{f}"])) for f in categorical}
    return FeaturePlan(tuple(numeric), tuple((f, float(medians[f] or 0.0)) for f in nullable),
                       tuple((f, values[f]) for f in categorical))


def preparation_statement(plan: FeaturePlan) -> str:
    # Feature names come from the validated settings; category values are SQL-escaped literals.
    medians = dict(plan.medians)
    parts = []
    for f in plan.numeric:
        value = f"coalesce(`{f}`, {medians[f]!r})" if f in medians else f"`{f}`"
        parts.append(f"signum({value}) * ln(1 + abs({value})) AS `{f}__log`")
    parts += [f"CAST(`{f}` IS NULL AS DOUBLE) AS `{f}__unknown`" for f, _ in plan.medians]
    parts += [f"CAST(`{f}` = {_sql_literal(v)} AS DOUBLE) * {ONE_HOT_WEIGHT!r} AS `{f}__{i}`"
              for f, values in plan.categories for i, v in enumerate(values)]
    return f"SELECT *, {', '.join(parts)} FROM __THIS__"


def preparation_pipeline(plan: FeaturePlan) -> Pipeline:
    """Transform, assemble and standardise the numeric part, then append the one-hot indicators."""
    stages = [SQLTransformer(statement=preparation_statement(plan)),
              VectorAssembler(inputCols=plan.numeric_columns, outputCol="raw_features"),
              StandardScaler(inputCol="raw_features", outputCol="scaled_features", withMean=True, withStd=True)]
    stages.append(VectorAssembler(inputCols=["scaled_features", *plan.indicator_columns], outputCol="features")
                  if plan.indicator_columns else
                  SQLTransformer(statement="SELECT *, scaled_features AS features FROM __THIS__"))
    return Pipeline(stages=stages)


def select_features(df: DataFrame, features: list[str], max_correlation: float) -> tuple[list[str], dict[str, str]]:
    """Drop numeric features nearly duplicating an earlier one (|Pearson r| of the log features above the
    limit), and features the table does not have (their optional source is not in use)."""
    dropped = {f: "not in the feature table (its optional source is not in use)" for f in features
               if f not in df.columns}
    features = [f for f in features if f in df.columns]
    numeric = [f for f in features if f not in enrich.CATEGORICAL_FEATURES]
    if max_correlation >= 1.0 or len(numeric) < 2 or df.limit(3).count() < 3:
        return features, dropped  # nothing to compare, or too few customers for a correlation
    plan = plan_features(df, numeric)
    assembled = Pipeline(stages=preparation_pipeline(plan).getStages()[:2]).fit(df).transform(df)
    matrix = Correlation.corr(assembled, "raw_features").first()[0].toArray()
    kept: list[str] = []
    for i, feature in enumerate(numeric):
        twins = [(numeric[j], matrix[i, j]) for j in range(i) if numeric[j] in kept
                 and not math.isnan(matrix[i, j]) and abs(matrix[i, j]) > max_correlation]
        if twins:
            dropped[feature] = f"correlation {twins[0][1]:.3f} with {twins[0][0]} (limit {max_correlation})"
        else:
            kept.append(feature)
    return [f for f in features if f in kept or f in enrich.CATEGORICAL_FEATURES], dropped


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
    trials = [estimator(algorithm, k, settings.seed + start, customers).setMaxIter(KMEANS_TRIAL_ITERATIONS).fit(prepared)
              for start in range(settings.kmeans_starts)]
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


def _signature(df: DataFrame, features: list[str]):
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    types = {"integer": "integer", "long": "long", "double": "double", "string": "string"}
    inputs = [ColSpec(types[df.schema[f].dataType.typeName()], f) for f in features]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema([ColSpec("integer", "segment_id")]))


def _save_native_model(model, staging: str) -> str:
    """Save a fitted Spark model in MLlib's own format; returns the folder."""
    target = f"{staging.rstrip('/')}/model-{uuid.uuid4().hex}"
    model.write().overwrite().save(target)
    return target


@dataclass
class Fitted:
    candidate: Candidate
    model: object | None = None
    saved_at: str | None = None


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


def fit_candidates(prepared: DataFrame, customers: int, dimensions: int, settings: Settings):
    """Fit every (algorithm, k), measure them and log each as a nested MLflow run; returns
    candidates, models, run ids.

    Candidates are fitted and saved a few at a time: on small data each Spark job is mostly
    scheduling latency, which overlaps well. Logging to MLflow stays in this thread, in grid order.
    """
    import mlflow

    grid = [(a, k) for a in settings.algorithms for k in range(settings.k_min, settings.k_max + 1)]
    done = iter(range(1, len(grid) + 1))

    def fit(cell):
        fitted = fit_one(prepared, *cell, customers, settings)
        c = fitted.candidate
        say(f"[train] candidate {next(done)} of {len(grid)} fitted: {c.label}"
            + (f": {_outcome(c)}" if c.skipped_reason else ""))
        return fitted

    def save(fitted):
        if fitted.model is None:
            return fitted
        return dataclasses.replace(fitted, saved_at=_save_native_model(fitted.model, settings.model_staging))

    with ThreadPoolExecutor(max_workers=PARALLEL_FITS) as pool:
        results = measure(prepared, list(pool.map(fit, grid)), dimensions)
        for c in (fitted.candidate for fitted in results if fitted.candidate.metrics):
            say(f"[train] {c.label}: {_outcome(c)}")
        results = list(pool.map(save, results))
    run_ids = []
    for fitted in results:
        c = fitted.candidate
        with mlflow.start_run(run_name=c.label, nested=True) as run:
            mlflow.log_params({"algorithm": c.algorithm, "k": c.k, "seed": settings.seed})
            mlflow.log_metrics({m: v for m, v in c.metrics.items() if not math.isnan(v)})
            if c.skipped_reason:
                mlflow.set_tag("skipped_reason", c.skipped_reason)
            else:
                mlflow.log_artifacts(fitted.saved_at, "model")
                shutil.rmtree(fitted.saved_at, ignore_errors=True)
            run_ids.append(run.info.run_id)
    return [f.candidate for f in results], [f.model for f in results], run_ids


def _outcome(c: Candidate) -> str:
    if c.skipped_reason:
        return f"skipped: {c.skipped_reason}"
    return (f"silhouette {c.metrics['silhouette_sq_euclidean']:.3f}, Davies-Bouldin {c.metrics['davies_bouldin']:.3f}, "
            f"smallest segment {c.metrics['smallest_segment_share']:.1%}")


def metrics_frame(candidates: list[Candidate], run_ids: list[str], champion: int | None,
                  rule: SelectionRule) -> pd.DataFrame:
    rows = []
    for index, (candidate, run_id) in enumerate(zip(candidates, run_ids)):
        row = {"candidate_run_id": run_id, "algorithm": candidate.algorithm, "k": candidate.k}
        row.update({m: candidate.metrics.get(m) for m in METRIC_NAMES})
        row["segment_shares"] = list(candidate.segment_shares) or None
        row["segment_revenue_shares"] = list(candidate.segment_revenue_shares) or None
        row["unactionable_segments"] = rule.unactionable_segments(candidate) if candidate.trained else None
        row["skipped_reason"] = candidate.skipped_reason
        row["is_champion"] = index == champion
        rows.append(row)
    return pd.DataFrame(rows)


def write_metrics_table(spark: SparkSession, settings: Settings, frame: pd.DataFrame, parent_run_id: str,
                        as_of_date) -> int:
    records = frame.assign(as_of_date=as_of_date, mlflow_run_id=parent_run_id).to_dict("records")

    def cell(value, column: Col):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return int(value) if isinstance(column.type, IntegerType) else value

    rows = [tuple(cell(record[c.name], c) for c in CLUSTERING_METRICS.columns) for record in records]
    # One training per as_of_date in the table: a rerun replaces it in one commit.
    overwrite_table(spark, settings.tables.clustering_metrics, spark.createDataFrame(rows, CLUSTERING_METRICS.schema),
                    CLUSTERING_METRICS, replacing=F.col("as_of_date") == F.lit(as_of_date))
    return len(rows)


def run(spark: SparkSession, settings: Settings) -> dict[str, int]:
    import mlflow

    tables = settings.tables
    all_customers = spark.table(tables.customer_features)
    if all_customers.isEmpty():
        raise UserError(f"{tables.customer_features} is empty: there are no customers to segment")
    # Customers without net purchases have no purchase behaviour to describe: the model is fitted
    # and chosen on the others, and its last stage gives them their rule segment.
    feature_table = all_customers.where(has_net_purchases())
    customers, left_out = feature_table.count(), all_customers.where(~has_net_purchases()).count()
    if customers == 0:
        raise UserError(f"no customer in {tables.customer_features} has net purchases of goods "
                        f"({left_out:,} customers, all with a net spend of zero or below): nothing to segment")
    if left_out:
        say(f"[train] {left_out:,} customers without net purchases left out of the model (their own segment)")
    as_of_date = feature_table.select("as_of_date").first()[0]
    experiment_id = tracking.configure(settings)
    tracking.end_orphaned_runs(experiment_id)
    kept, dropped = select_features(feature_table, list(settings.features), settings.max_feature_correlation)
    for feature, why in dropped.items():
        say(f"[train] feature {feature} dropped: {why}")
    if not kept:
        raise UserError(f"no clustering feature left: {'; '.join(f'{f}: {why}' for f, why in dropped.items())}")
    plan = plan_features(feature_table, kept)
    preparation = preparation_pipeline(plan).fit(feature_table)
    # Sorted into as few partitions as the size allows: the same customers then give the same
    # seeded fits and the same floating-point sums on every run (Spark combines partition results
    # in completion order). Checkpointed rather than cached: the sweep runs thousands of small
    # jobs, and each task would otherwise carry the whole lineage back to the Delta scan (about a
    # quarter of the time of a k-means iteration on the real data). Spark frees the checkpoint
    # when the DataFrame is garbage-collected.
    partitions = max(1, math.ceil(customers / CUSTOMERS_PER_PARTITION))
    prepared = (preparation.transform(feature_table).select("customer_id", "features", "monetary")
                .orderBy("customer_id").coalesce(partitions).localCheckpoint(eager=True))
    rule = SelectionRule(settings.min_segment_share, settings.min_segment_revenue_share, settings.selection_tolerance)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"segmentation as of {as_of_date}",
                          tags={tracking.TASK_TAG: "train"}) as parent:
        mlflow.log_params({
            "source": settings.landing_path, "source_profile": settings.source_profile,
            "as_of_date": str(as_of_date), "features": ",".join(kept),
            "features_dropped": ",".join(dropped) or "none", "k_min": settings.k_min, "k_max": settings.k_max,
            "algorithms": ",".join(settings.algorithms), "kmeans_starts": settings.kmeans_starts,
            "seed": settings.seed, "customers": customers, "customers_without_net_purchases": left_out,
            "feature_table": tables.customer_features,
            "feature_table_version": table_version(spark, tables.customer_features),
            "selection_rule": rule.describe()[:6000], "job_run_id": settings.run_id,
        })
        mlflow.log_dict({"kept": kept, "dropped": dropped, "plan": dataclasses.asdict(plan)},
                        "feature_selection.json")
        candidates, models, run_ids = fit_candidates(prepared, customers, plan.dimensions, settings)
        champion, reason, fallback = rule.choose(candidates, settings.algorithms)
        frame = metrics_frame(candidates, run_ids, champion, rule)
        _log_sweep_artifacts(frame)
        rows = write_metrics_table(spark, settings, frame, parent.info.run_id, as_of_date)
        if champion is None:
            mlflow.set_tag("champion", "none")
            raise UserError(f"no segmentation possible: {reason}")
        if fallback:
            say(f"[train] warning: no candidate has every segment actionable; the fallback rule chose")
        say(f"[train] champion: {reason}")
        mlflow.set_tags({"champion": candidates[champion].label, "selection_reason": reason[:5000],
                         "selection_fallback": str(fallback).lower()})
        mlflow.log_text(f"{rule.describe()}\n\nChosen: {reason}\n", "selection.txt")
        version = _log_champion(spark, settings, feature_table, plan, preparation, models[champion],
                                prepared, candidates[champion])
        mlflow.set_tag("registered_model_version", version)
    return {tables.clustering_metrics: rows}


def _log_sweep_artifacts(frame: pd.DataFrame) -> None:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        frame.to_csv(out / "clustering_metrics.csv", index=False)
        plots.elbow(frame, out / "elbow_wcss.png")
        plots.metrics_by_k(frame, out / "metrics_by_k.png")
        mlflow.log_artifacts(tmp, "figures")


def _log_champion(spark: SparkSession, settings: Settings, feature_table: DataFrame, plan: FeaturePlan,
                  preparation: PipelineModel, model, prepared: DataFrame, candidate: Candidate) -> str:
    """Figures of the champion's segments, the model with its signature, registration and alias."""
    import mlflow
    import pyspark

    model = number_segments(model, prepared)
    pipeline = PipelineModel(stages=preparation.stages + model.stages)
    assignments = model.transform(prepared).select("customer_id", "segment_id")
    scored = feature_table.join(assignments, "customer_id").cache()
    try:
        names = profiling.name_segments(scored)
        mlflow.log_dict({str(s): {"name": n.name, "action": n.action, "standing": n.standing}
                         for s, n in sorted(names.items())}, "segment_names.json")
        with tempfile.TemporaryDirectory() as tmp:
            profiling.draw_champion_figures(
                scored, model.transform(prepared), names, list(plan.numeric), Path(tmp), settings.seed,
                settings.currency,
                f"Champion {candidate.label}: customers per segment")
            mlflow.log_artifacts(tmp, "figures")
        sample_value, sample_size = metrics.silhouette_euclidean_sample(
            model.transform(prepared), settings.silhouette_sample_size, settings.seed, prediction_col="segment_id")
        mlflow.log_metrics({"silhouette_euclidean_sample": sample_value, "silhouette_sample_size": sample_size}
                           if not math.isnan(sample_value) else {"silhouette_sample_size": sample_size})
        mlflow.log_metrics({f"champion_{m}": v for m, v in candidate.metrics.items() if not math.isnan(v)})
    finally:
        scored.unpersist()
    info = mlflow.spark.log_model(
        pipeline, "model", signature=_signature(feature_table, model_inputs(plan)),
        dfs_tmpdir=settings.model_staging, pip_requirements=[f"pyspark=={pyspark.__version__}"],
    )
    registered = mlflow.register_model(info.model_uri, settings.model_name)
    mlflow.MlflowClient().set_registered_model_alias(settings.model_name, tracking.CHAMPION_ALIAS,
                                                     registered.version)
    say(f"[train] registered {settings.model_name} version {registered.version} as @{tracking.CHAMPION_ALIAS}")
    return str(registered.version)
