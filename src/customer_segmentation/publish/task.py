"""Task `publish`: score every customer with the champion, name and profile the segments, keep history."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ..core.delta import (
    overwrite_table,
    overwrite_tables,
    table_exists,
)
from ..core.errors import UserError
from ..core.settings import Settings
from ..core.tables import table
from ..models import tracking
from ..models.segment_statistics import name_segments
from . import figures, segment_mix
from .segment_profiles import preferred_categories, segment_names_frame, segment_profiles
from .views import view_statements


def _log_report_figures(spark: SparkSession, settings: Settings, model_version: str, as_of_date) -> None:
    """Draw the report's own figures once and keep them in MLflow; the report embeds these files."""
    import mlflow

    with tracking.task_run(settings, "publish", f"publish as of {as_of_date}"):
        mlflow.set_tag("model_version", str(model_version))
        mlflow.log_params({"as_of_date": str(as_of_date), "model_name": settings.model_name,
                           "model_version": str(model_version), "job_run_id": settings.run_id})
        with tempfile.TemporaryDirectory() as tmp:
            figures.draw_report_figures(spark, settings, Path(tmp))
            mlflow.log_artifacts(tmp, "report_figures")


def _lifetime_values(spark: SparkSession, settings: Settings, as_of_date) -> DataFrame:
    """gold.customer_lifetime_value, which must value the customers of these features."""
    name = settings.tables.customer_lifetime_value
    if not table_exists(spark, name):
        raise UserError(f"{name} does not exist: run task lifetime_value before publish")
    values = spark.table(name)
    dates = [row[0] for row in values.select("as_of_date").distinct().collect()]
    if dates != [as_of_date]:
        raise UserError(f"{name} is as of {', '.join(map(str, dates)) or '(no rows)'} but the customer features "
                        f"are as of {as_of_date}: run task lifetime_value before publish")
    return values


def run(spark: SparkSession, settings: Settings) -> dict[str, int]:
    import mlflow

    tables = settings.tables
    sources = settings.sources_in_use
    tracking.configure(settings)
    version = mlflow.MlflowClient().get_model_version_by_alias(settings.model_name, tracking.CHAMPION_ALIAS)
    model = mlflow.spark.load_model(tracking.champion_uri(settings), dfs_tmpdir=settings.model_staging)
    features = spark.table(tables.customer_features)
    scored = (model.transform(features).select(*features.columns, F.col("segment_id").cast("int"))
              .cache())
    try:
        names = name_segments(scored)
        as_of_date = features.select("as_of_date").first()[0]
        rfm = spark.table(tables.rfm_segments).select("customer_id", "rfm_segment")
        lineage = [F.lit(settings.model_name).alias("model_name"), F.lit(str(version.version)).alias("model_version")]
        segments = (scored.select("customer_id", "segment_id", "as_of_date")
                    .join(segment_names_frame(spark, names), "segment_id")
                    .join(rfm, "customer_id", "left")
                    .select("*", *lineage, F.lit(version.run_id).alias("training_run_id")))
        built = {"customer_segments": segments}
        preferred = None
        if "products" in sources:
            named = segments.select("customer_id", "segment_id", "segment_name", "as_of_date")
            categories = segment_mix.segment_categories(
                segment_mix.category_lines(spark.table(tables.orders), spark.table(tables.products), as_of_date),
                named)
            preferred = preferred_categories(categories)
            built["segment_categories"] = categories
        if "customers" in sources:
            built["segment_attributes"] = segment_mix.segment_attributes(
                scored.join(segment_names_frame(spark, names), "segment_id"))
        built["segment_profiles"] = segment_profiles(
            scored, rfm, names, _lifetime_values(spark, settings, as_of_date), settings.currency, preferred).select(
            "*", *lineage, F.lit(as_of_date).alias("as_of_date"))
        written = overwrite_tables(spark, {getattr(tables, name): (df, table(name).spec(sources))
                                           for name, df in built.items()})
        # One snapshot per as_of_date, replaced atomically: readers never see half of one.
        written[tables.segment_history] = overwrite_table(
            spark, tables.segment_history, spark.table(tables.customer_segments), table("segment_history").spec(),
            replacing=F.col("as_of_date") == F.lit(as_of_date))
        silver = all(table_exists(spark, name) for name in (tables.orders, tables.orders_quarantine))
        for statement in view_statements(settings, with_data_quality=silver):
            spark.sql(statement)
        _log_report_figures(spark, settings, version.version, as_of_date)
        return written
    finally:
        scored.unpersist()
