"""Task `train`: MLlib sweep over algorithms and k, exact metrics, MLflow tracking, champion model.

The features are prepared once (signed log1p, assembled, standardised) and checkpointed; every
candidate clusters the same vectors. Each candidate is a nested MLflow run with its parameters
and metrics; the parent run holds the parameters, the figures, the metrics table and the
champion's model, registered with the alias `champion`.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType

from ..core.console import say
from ..core.delta import overwrite_table, table_version
from ..core.errors import UserError
from ..core.settings import Settings
from ..core.tables import Column, table
from ..gold.features import has_net_purchases
from . import figures, metrics, segment_statistics, tracking
from .fitting import Fitted, fit_one, measure, model_inputs, number_segments
from .preparation import FeaturePlan, plan_features, preparation_pipeline, select_features
from .selection import Candidate, SelectionRule

PARALLEL_FITS = 3
CUSTOMERS_PER_PARTITION = 200_000
METRIC_NAMES = ("silhouette_sq_euclidean", "davies_bouldin", "calinski_harabasz", "wcss",
                "smallest_segment_share", "smallest_segment_revenue_share", "largest_segment_share", "segments_found",
                "log_likelihood")
CLUSTERING_METRICS = table("clustering_metrics").spec()


def _signature(df: DataFrame, features: list[str]):
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    types = {"integer": "integer", "long": "long", "double": "double", "string": "string"}
    inputs = [ColSpec(types[df.schema[f].dataType.typeName()], f) for f in features]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema([ColSpec("integer", "segment_id")]))


def fit_candidates(prepared: DataFrame, customers: int, dimensions: int, settings: Settings):
    """Fit every (algorithm, k), measure them and log each as a nested MLflow run; returns
    candidates, models, run ids.

    Candidates are fitted a few at a time: on small data each Spark job is mostly scheduling
    latency, which overlaps well. Logging to MLflow stays in this thread, in grid order. Only the
    champion's model is logged: a fit is a function of its parameters (for k-means the seed of the
    chosen start, `start_seed`), so any candidate can be fitted again, and saving every candidate's
    model took a tenth of the task (BENCHMARKS.md).
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

    with ThreadPoolExecutor(max_workers=PARALLEL_FITS) as pool:
        results = measure(prepared, list(pool.map(fit, grid)), dimensions)
    for c in (fitted.candidate for fitted in results if fitted.candidate.metrics):
        say(f"[train] {c.label}: {_outcome(c)}")
    run_ids = []
    for fitted in results:
        c = fitted.candidate
        with mlflow.start_run(run_name=c.label, nested=True) as run:
            params = {"algorithm": c.algorithm, "k": c.k, "seed": settings.seed}
            if c.algorithm == "kmeans" and fitted.model is not None:
                params["start_seed"] = fitted.model.getSeed()
            mlflow.log_params(params)
            mlflow.log_metrics({m: v for m, v in c.metrics.items() if not math.isnan(v)})
            if c.skipped_reason:
                mlflow.set_tag("skipped_reason", c.skipped_reason)
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

    def cell(value, column: Column):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return int(value) if isinstance(column.type, IntegerType) else value

    rows = [tuple(cell(record[c.name], c) for c in CLUSTERING_METRICS.columns) for record in records]
    # One training per as_of_date in the table: a rerun replaces it in one commit.
    return overwrite_table(spark, settings.tables.clustering_metrics,
                           spark.createDataFrame(rows, CLUSTERING_METRICS.schema), CLUSTERING_METRICS,
                           replacing=F.col("as_of_date") == F.lit(as_of_date))


def run(spark: SparkSession, settings: Settings) -> dict[str, int]:
    import mlflow

    tables = settings.tables
    all_customers = spark.table(tables.customer_features)
    # Customers without net purchases have no purchase behaviour to describe: the model is fitted
    # and chosen on the others, and its last stage gives them their rule segment.
    net = has_net_purchases()
    feature_table = all_customers.where(net)
    customers, everyone, as_of_date = all_customers.agg(  # one query for every check below
        F.count_if(net), F.count("*"), F.max(F.when(net, F.col("as_of_date")))).first()
    left_out = everyone - customers
    if everyone == 0:
        raise UserError(f"{tables.customer_features} is empty: there are no customers to segment")
    if customers == 0:
        raise UserError(f"no customer in {tables.customer_features} has net purchases of goods "
                        f"({left_out:,} customers, all with a net spend of zero or below): nothing to segment")
    if left_out:
        say(f"[train] {left_out:,} customers without net purchases left out of the model (their own segment)")
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
    searched, searched_customers = search_sample(prepared, customers, settings)
    sampled = searched_customers < customers
    if sampled:
        say(f"[train] model search on a sample of {searched_customers:,} of the {customers:,} customers")
    rule = SelectionRule(settings.min_segment_share, settings.min_segment_revenue_share, settings.selection_tolerance)
    with tracking.task_run(settings, "train", f"segmentation as of {as_of_date}") as parent:
        mlflow.log_params({
            "source": settings.landing_path, "source_profile": settings.source_profile,
            "as_of_date": str(as_of_date), "features": ",".join(kept),
            "features_dropped": ",".join(dropped) or "none", "k_min": settings.k_min, "k_max": settings.k_max,
            "algorithms": ",".join(settings.algorithms), "kmeans_starts": settings.kmeans_starts,
            "seed": settings.seed, "customers": customers, "customers_without_net_purchases": left_out,
            "search_customers": searched_customers,
            "feature_table": tables.customer_features,
            "feature_table_version": table_version(spark, tables.customer_features),
            "selection_rule": rule.describe()[:6000], "job_run_id": settings.run_id,
        })
        mlflow.log_dict({"kept": kept, "dropped": dropped, "plan": dataclasses.asdict(plan)},
                        "feature_selection.json")
        candidates, models, run_ids = fit_candidates(searched, searched_customers, plan.dimensions, settings)
        champion, reason, fallback = rule.choose(candidates, settings.algorithms)
        frame = metrics_frame(candidates, run_ids, champion, rule)
        _log_sweep_artifacts(frame)
        rows = write_metrics_table(spark, settings, frame, parent.info.run_id, as_of_date)
        if champion is None:
            mlflow.set_tag("champion", "none")
            raise UserError(f"no segmentation possible: {reason}")
        if fallback:
            say("[train] warning: no candidate has every segment actionable; the fallback rule chose")
        say(f"[train] champion: {reason}")
        mlflow.set_tags({"champion": candidates[champion].label, "selection_reason": reason[:5000],
                         "selection_fallback": str(fallback).lower()})
        searched_on = (f"\n\nThe candidates were fitted and measured on a seeded sample of {searched_customers:,} "
                       f"of the {customers:,} modelled customers (search_sample_size); the champion segments all."
                       if sampled else "")
        mlflow.log_text(f"{rule.describe()}\n\nChosen: {reason}{searched_on}\n", "selection.txt")
        chosen = candidates[champion]
        if sampled:  # the champion's own metrics, on every customer it segments
            chosen = measure(prepared, [Fitted(chosen, models[champion])], plan.dimensions)[0].candidate
        version = _log_champion(spark, settings, feature_table, plan, preparation, models[champion],
                                prepared, chosen)
        mlflow.set_tag("registered_model_version", version)
    return {tables.clustering_metrics: rows}


def search_sample(prepared: DataFrame, customers: int, settings: Settings) -> tuple[DataFrame, int]:
    """The customers the model search fits and measures its candidates on, and how many.

    The sweep's time grows with every customer, while past a few tens of thousands more of them
    did not change which candidate wins (BENCHMARKS.md). Beyond `search_sample_size` customers the
    search takes a seeded sample of about that many, drawn by a hash of the customer id: a rerun
    fits the same customers, and a customer in today's sample stays in it as others arrive.
    """
    size = settings.search_sample_size
    if not size or customers <= size:
        return prepared, customers
    per_million = round(1_000_000 * size / customers)
    sample = (prepared.where(F.pmod(F.xxhash64("customer_id", F.lit(settings.seed)), F.lit(1_000_000)) < per_million)
              .coalesce(math.ceil(size / CUSTOMERS_PER_PARTITION)).localCheckpoint(eager=True))
    return sample, sample.count()


def _log_sweep_artifacts(frame: pd.DataFrame) -> None:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        frame.to_csv(out / "clustering_metrics.csv", index=False)
        figures.elbow(frame, out / "elbow_wcss.png")
        figures.metrics_by_k(frame, out / "metrics_by_k.png")
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
        names = segment_statistics.name_segments(scored)
        mlflow.log_dict({str(s): {"name": n.name, "action": n.action, **dataclasses.asdict(n.profile)}
                         for s, n in sorted(names.items())}, "segment_names.json")
        with tempfile.TemporaryDirectory() as tmp:
            figures.draw_champion_figures(
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
