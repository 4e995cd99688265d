"""Task `publish`: score every customer with the champion, name and profile the segments, keep history."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DateType, DoubleType, IntegerType, LongType, StringType

from . import enrich, naming, profiling, tracking
from .features import RULE_SEGMENT_ID
from .naming import SegmentName
from .rules import segment_catalogue
from .settings import CLUSTERING_FEATURES, Settings
from .tables import Column as Col
from .tables import (TableSpec, create_table_if_missing, drop_if_columns_changed, overwrite_tables,
                     rows_in_last_commit)

_MODEL = (Col("model_name", StringType(), "Registered model that assigned the segment"),
          Col("model_version", StringType(), "Version of the registered model"))
_AS_OF = Col("as_of_date", DateType(), "Reference date of the features that were scored")

CUSTOMER_SEGMENTS = TableSpec(
    comment="The current segment of every customer in gold.customer_features, with what marketing should do.",
    columns=(
        Col("customer_id", StringType(), "Customer ID"),
        Col("segment_id", IntegerType(), "Segment number assigned by the model: 0 is the largest segment, "
                                             "then by size; -1 = no net purchases (by rule, outside the model)"),
        Col("segment_name", StringType(), "Marketing name of the segment, chosen from its profile"),
        Col("recommended_action", StringType(), "What marketing is advised to do with this segment"),
        Col("rfm_segment", StringType(), "Rule-based RFM segment of the customer, for comparison"),
        *_MODEL,
        Col("training_run_id", StringType(), "MLflow run that trained the model"),
        _AS_OF,
    ),
)

SEGMENT_PROFILES = TableSpec(
    comment="One row per segment: size, revenue share, feature means and medians, dominant RFM segment, "
            "top countries and the recommended action.",
    columns=(
        Col("segment_id", IntegerType(), "Segment number (-1: customers without net purchases, by rule)"),
        Col("segment_name", StringType(), "Marketing name of the segment"),
        Col("customers", LongType(), "Customers in the segment"),
        Col("share_of_customers", DoubleType(), "Share of all customers (0-1)"),
        Col("share_of_net_revenue", DoubleType(), "Share of all customers' net revenue (0-1; below 0 for "
                                                  "customers without net purchases; null when the total is "
                                                  "not positive)"),
        *[Col(f"{stat}_{feature}", DoubleType(), f"{stat.capitalize()} {feature} of the segment's customers")
          for feature in CLUSTERING_FEATURES for stat in ("mean", "median")],
        Col("dominant_rfm_segment", StringType(), "Most common rule-based RFM segment among its customers"),
        Col("dominant_rfm_share", DoubleType(), "Share of the segment's customers in that RFM segment"),
        Col("top_countries", ArrayType(StringType()), "The three countries with most of its customers"),
        Col("description", StringType(), "What characterises the segment, in plain words"),
        Col("recommended_action", StringType(), "What marketing is advised to do with it"),
        *_MODEL,
        _AS_OF,
    ),
)

# Profiled too when the optional sources give them.
ENRICHED_PROFILE_FEATURES = ("age", "income", "loyalty_level", "engagement_score", "behaviour_score")


def profiles_spec(columns: list[str], with_categories: bool) -> TableSpec:
    """segment_profiles' columns: as before, plus enriched features and preferred categories when present."""
    extra = [Col(f"{stat}_{feature}", DoubleType(), f"{stat.capitalize()} {feature} of the segment's customers")
             for feature in ENRICHED_PROFILE_FEATURES if feature in columns for stat in ("mean", "median")]
    if with_categories:
        extra.append(Col("preferred_categories", ArrayType(StringType()),
                         "Categories the segment leans to most (over-index 1.1 or more, highest first), "
                         "e.g. 'Christmas (1.8x)'; see gold.segment_categories"))
    if not extra:
        return SEGMENT_PROFILES
    at = SEGMENT_PROFILES.names.index("dominant_rfm_segment")
    columns_out = SEGMENT_PROFILES.columns[:at] + tuple(extra) + SEGMENT_PROFILES.columns[at:]
    return TableSpec(comment=SEGMENT_PROFILES.comment, columns=columns_out)


SEGMENT_HISTORY = TableSpec(
    comment="A snapshot of every customer's segment per as_of_date; publishing the same date again replaces "
            "that snapshot in one commit.",
    columns=(
        Col("as_of_date", DateType(), "Reference date of the snapshot"),
        Col("customer_id", StringType(), "Customer ID"),
        Col("segment_id", IntegerType(), "Segment number"),
        Col("segment_name", StringType(), "Marketing name of the segment"),
        Col("rfm_segment", StringType(), "Rule-based RFM segment"),
        *_MODEL,
    ),
)

MIGRATION_COMMENT = ("Customers moving from each segment of the previous snapshot in segment_history to each "
                     "segment of the latest one.")


def segment_names_frame(spark: SparkSession, names: dict[int, SegmentName]) -> DataFrame:
    return spark.createDataFrame([(s, n.name, n.action) for s, n in names.items()],
                                 "segment_id int, segment_name string, recommended_action string")


def profiles(scored: DataFrame, rfm: DataFrame, names: dict[int, SegmentName],
             preferred: dict[int, list[str]] | None = None) -> DataFrame:
    """scored: customer features with segment_id; rfm: customer_id, rfm_segment; preferred: the
    preferred categories of each segment, when products are known."""
    spark = scored.sparkSession
    features = list(CLUSTERING_FEATURES) + [f for f in ENRICHED_PROFILE_FEATURES if f in scored.columns]
    net = F.col("monetary").cast("decimal(24,4)")
    totals = scored.agg(F.count("*").alias("n"), F.sum(net).alias("net")).first()
    stats = scored.groupBy("segment_id").agg(
        F.count("*").alias("customers"),
        (F.count("*") / F.lit(totals["n"])).alias("share_of_customers"),
        # A share of a total that is not positive says nothing: undefined (null), not divided by a stand-in.
        (F.sum(net).cast("double") / F.lit(float(totals["net"])) if totals["net"] and totals["net"] > 0
         else F.lit(None).cast("double")).alias("share_of_net_revenue"),
        *[F.avg(f).alias(f"mean_{f}") for f in features],
        *[F.percentile(f, 0.5).alias(f"median_{f}") for f in features],
    )
    by_rfm = (scored.select("customer_id", "segment_id").join(rfm, "customer_id")
              .groupBy("segment_id", "rfm_segment").count())
    rfm_rank = Window.partitionBy("segment_id").orderBy(F.desc("count"), "rfm_segment")
    dominant = (by_rfm.withColumn("r", F.row_number().over(rfm_rank))
                .withColumn("total", F.sum("count").over(Window.partitionBy("segment_id")))
                .where("r = 1").select("segment_id", F.col("rfm_segment").alias("dominant_rfm_segment"),
                                       (F.col("count") / F.col("total")).alias("dominant_rfm_share")))
    country_rank = Window.partitionBy("segment_id").orderBy(F.desc("count"), "main_country")
    countries = (scored.groupBy("segment_id", "main_country").count()
                 .withColumn("r", F.row_number().over(country_rank)).where("r <= 3")
                 .groupBy("segment_id").agg(F.sort_array(F.collect_list(F.struct("r", "main_country"))).alias("c"))
                 .select("segment_id", F.col("c.main_country").alias("top_countries")))
    rows = stats.join(dominant, "segment_id").join(countries, "segment_id").toPandas()
    medians = ("recency_days", "frequency", "monetary", "avg_order_value")
    rows["top_countries"] = rows["top_countries"].map(list)
    rule = segment_catalogue().without_net_purchases
    rows["description"] = [rule.description if int(r["segment_id"]) == RULE_SEGMENT_ID else
                           naming.describe(names[int(r["segment_id"])].standing, {f: r[f"median_{f}"] for f in medians},
                                           names[int(r["segment_id"])].activity)
                           for _, r in rows.iterrows()]
    rows["segment_name"] = rows["segment_id"].map(lambda s: names[int(s)].name)
    rows["recommended_action"] = rows["segment_id"].map(lambda s: names[int(s)].action)
    if preferred is None:
        return spark.createDataFrame(rows)
    # Joined as text (an all-empty list column has no type to infer), split back in Spark.
    rows["preferred_categories"] = rows["segment_id"].map(lambda s: "\u001f".join(preferred.get(int(s), [])))
    text = F.col("preferred_categories")
    return spark.createDataFrame(rows).withColumn(
        "preferred_categories", F.when(text == "", F.array().cast("array<string>")).otherwise(F.split(text, "\u001f")))


def preferred_categories(categories: DataFrame, top: int = 3, threshold: float = 1.1) -> dict[int, list[str]]:
    """segment_id -> the categories it over-indexes on most (at least `threshold`), as 'name (1.8x)'."""
    rows = (categories.where((F.col("over_index") >= threshold) & (F.col("net_revenue") > 0))
            .select("segment_id", "category", "over_index").collect())
    out: dict[int, list[str]] = {}
    for row in sorted(rows, key=lambda r: (r["segment_id"], -r["over_index"], r["category"])):
        if len(out.setdefault(row["segment_id"], [])) < top:
            out[row["segment_id"]].append(f"{row['category']} ({row['over_index']:.1f}x)")
    return out


def migration_view_sql(history: str, view: str) -> str:
    # Table names are built from validated identifiers only.
    return f"""
CREATE OR REPLACE VIEW {view} COMMENT '{MIGRATION_COMMENT}' AS
WITH snapshots AS (
  SELECT as_of_date, dense_rank() OVER (ORDER BY as_of_date DESC) AS age
  FROM (SELECT DISTINCT as_of_date FROM {history})
),
latest AS (SELECT h.* FROM {history} h JOIN snapshots s ON h.as_of_date = s.as_of_date AND s.age = 1),
previous AS (SELECT h.* FROM {history} h JOIN snapshots s ON h.as_of_date = s.as_of_date AND s.age = 2)
SELECT
  (SELECT max(as_of_date) FROM snapshots WHERE age = 2) AS from_date,
  (SELECT max(as_of_date) FROM snapshots WHERE age = 1) AS to_date,
  coalesce(previous.segment_name, '(new customer)') AS from_segment,
  coalesce(latest.segment_name, '(not scored)') AS to_segment,
  count(*) AS customers
FROM latest FULL OUTER JOIN previous ON latest.customer_id = previous.customer_id
GROUP BY 3, 4
"""


def convenience_views_sql(settings: Settings) -> list[str]:
    """Views for analysts: one row per segment, and each customer's latest segment with its RFM values."""
    t = settings.tables
    return [
        f"""CREATE OR REPLACE VIEW {t.segment_summary}
COMMENT 'One row per segment of the latest publication: size, revenue share and what to do.'
AS SELECT segment_name, customers, round(share_of_customers, 4) AS share_of_customers,
  round(share_of_net_revenue, 4) AS share_of_net_revenue, round(median_recency_days) AS median_recency_days,
  round(median_frequency) AS median_frequency, round(median_monetary, 2) AS median_net_revenue,
  dominant_rfm_segment, description, recommended_action, as_of_date
FROM {t.segment_profiles}""",
        f"""CREATE OR REPLACE VIEW {t.customer_latest_segment}
COMMENT 'Every customer with the segment of the latest publication, its action and the RFM values behind it.'
AS SELECT s.customer_id, s.segment_name, s.recommended_action, s.rfm_segment, f.recency_days, f.frequency,
  round(f.monetary, 2) AS net_revenue, f.last_purchase_date, f.main_country, s.as_of_date
FROM {t.customer_segments} s JOIN {t.customer_features} f ON s.customer_id = f.customer_id""",
    ]


def _log_report_figures(spark: SparkSession, settings: Settings, model_version: str, as_of_date) -> None:
    """Draw the report's own figures once and keep them in MLflow; the report embeds these files."""
    import tempfile
    from pathlib import Path

    import mlflow

    from . import report

    with mlflow.start_run(run_name=f"publish as of {as_of_date}",
                          tags={tracking.TASK_TAG: "publish", "model_version": str(model_version)}):
        mlflow.log_params({"as_of_date": str(as_of_date), "model_name": settings.model_name,
                           "model_version": str(model_version), "job_run_id": settings.run_id})
        with tempfile.TemporaryDirectory() as tmp:
            report.draw_report_figures(spark, settings, Path(tmp))
            mlflow.log_artifacts(tmp, "report_figures")


def run(spark: SparkSession, settings: Settings) -> dict[str, int]:
    import mlflow

    tables = settings.tables
    tracking.configure(settings)
    version = mlflow.MlflowClient().get_model_version_by_alias(settings.model_name, tracking.CHAMPION_ALIAS)
    model = mlflow.spark.load_model(tracking.champion_uri(settings), dfs_tmpdir=settings.model_staging)
    features = spark.table(tables.customer_features)
    scored = (model.transform(features).select(*features.columns, F.col("segment_id").cast("int"))
              .cache())
    try:
        names = profiling.name_segments(scored)
        as_of_date = features.select("as_of_date").first()[0]
        rfm = spark.table(tables.rfm_segments).select("customer_id", "rfm_segment")
        lineage = [F.lit(settings.model_name).alias("model_name"), F.lit(str(version.version)).alias("model_version")]
        segments = (scored.select("customer_id", "segment_id", "as_of_date")
                    .join(segment_names_frame(spark, names), "segment_id")
                    .join(rfm, "customer_id", "left")
                    .select("*", *lineage, F.lit(version.run_id).alias("training_run_id")))
        sources = settings.sources_in_use
        outputs = {}
        preferred = None
        if "products" in sources:
            named = segments.select("customer_id", "segment_id", "segment_name", "as_of_date")
            categories = enrich.segment_categories(
                enrich.category_lines(spark.table(tables.orders), spark.table(tables.products), as_of_date),
                named)
            preferred = preferred_categories(categories)
            outputs[tables.segment_categories] = (categories, enrich.SEGMENT_CATEGORIES)
        if "customers" in sources:
            outputs[tables.segment_attributes] = (
                enrich.segment_attributes(scored.join(segment_names_frame(spark, names), "segment_id")),
                enrich.SEGMENT_ATTRIBUTES)
        profile_spec = profiles_spec(scored.columns, preferred is not None)
        drop_if_columns_changed(spark, tables.segment_profiles, profile_spec)
        outputs[tables.customer_segments] = (segments, CUSTOMER_SEGMENTS)
        outputs[tables.segment_profiles] = (
            profiles(scored, rfm, names, preferred).select("*", *lineage, F.lit(as_of_date).alias("as_of_date")),
            profile_spec)
        written = overwrite_tables(spark, outputs)
        create_table_if_missing(spark, tables.segment_history, SEGMENT_HISTORY)
        history = spark.table(tables.customer_segments).select(*SEGMENT_HISTORY.names)
        # One snapshot per as_of_date, replaced atomically: readers never see half of one.
        history.writeTo(tables.segment_history).overwrite(F.col("as_of_date") == F.lit(as_of_date))
        written[tables.segment_history] = rows_in_last_commit(spark, tables.segment_history)
        spark.sql(migration_view_sql(tables.segment_history, tables.segment_migration))
        for statement in convenience_views_sql(settings):
            spark.sql(statement)
        _log_report_figures(spark, settings, version.version, as_of_date)
        return written
    finally:
        scored.unpersist()
