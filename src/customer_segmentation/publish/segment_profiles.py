"""The rows of gold.segment_profiles: each segment's size, revenue share, feature means and
medians, dominant RFM segment, top countries, description and action. Pure DataFrame transforms."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from ..core.rules import segment_catalogue
from ..core.tables import table
from ..gold.features import RULE_SEGMENT_ID
from ..models import naming
from ..models.naming import SegmentName
from ..models.segment_statistics import per_segment


def segment_names_frame(spark: SparkSession, names: dict[int, SegmentName]) -> DataFrame:
    return spark.createDataFrame([(s, n.name, n.action) for s, n in names.items()],
                                 "segment_id int, segment_name string, recommended_action string")


CLV_COLUMNS = ("mean_p_alive", "mean_p_purchase_90d", "customers_at_risk", "mean_predicted_clv",
               "total_predicted_clv", "share_of_predicted_clv")


def lifetime_value_by_segment(scored: DataFrame, lifetime_values: DataFrame) -> DataFrame:
    """segment_id and the CLV_COLUMNS: what gold.customer_lifetime_value says of each segment's customers."""
    segments = scored.select("customer_id", "segment_id")
    joined = segments.join(lifetime_values, "customer_id", "left")
    total = joined.agg(F.sum("predicted_clv")).first()[0]
    return joined.groupBy("segment_id").agg(
        F.avg("p_alive").alias("mean_p_alive"), F.avg("p_purchase_90d").alias("mean_p_purchase_90d"),
        F.count(F.when(F.col("churn_risk") != "active", 1)).cast("bigint").alias("customers_at_risk"),
        F.avg("predicted_clv").alias("mean_predicted_clv"), F.sum("predicted_clv").alias("total_predicted_clv"),
        (F.sum("predicted_clv") / F.lit(total) if total and total > 0
         else F.lit(None).cast("double")).alias("share_of_predicted_clv"))


def segment_profiles(scored: DataFrame, rfm: DataFrame, names: dict[int, SegmentName],
                     lifetime_values: DataFrame, currency: str,
                     preferred: dict[int, list[str]] | None = None) -> DataFrame:
    """Rows of gold.segment_profiles. scored: customer features with segment_id; rfm: customer_id,
    rfm_segment; lifetime_values: gold.customer_lifetime_value; currency: of the amounts in the
    descriptions; preferred: the preferred categories of each segment, when products are known."""
    spark = scored.sparkSession
    features = [c.name for c in table("customer_features").columns if c.profiled and c.name in scored.columns]
    net = F.col("monetary").cast("decimal(24,4)")
    totals = scored.agg(F.count("*").alias("n"), F.sum(net).alias("net")).first()
    stats = per_segment(
        scored, features, F.count("*").alias("customers"),
        (F.count("*") / F.lit(totals["n"])).alias("share_of_customers"),
        # A share of a total that is not positive says nothing: undefined (null), not divided by a stand-in.
        (F.sum(net).cast("double") / F.lit(float(totals["net"])) if totals["net"] and totals["net"] > 0
         else F.lit(None).cast("double")).alias("share_of_net_revenue"))
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
    rows = (stats.join(dominant, "segment_id").join(countries, "segment_id")
            .join(lifetime_value_by_segment(scored, lifetime_values), "segment_id").toPandas())
    medians = ("recency_days", "frequency", "monetary", "avg_order_value")
    rows["top_countries"] = rows["top_countries"].map(list)
    rule = segment_catalogue().without_net_purchases
    def description(row) -> str:
        segment = int(row["segment_id"])
        if segment == RULE_SEGMENT_ID:
            return rule.description
        return naming.describe(names[segment].profile, {f: row[f"median_{f}"] for f in medians}, currency=currency)

    rows["description"] = [description(r) for _, r in rows.iterrows()]
    rows["segment_name"] = rows["segment_id"].map(lambda s: names[int(s)].name)
    rows["recommended_action"] = rows["segment_id"].map(lambda s: names[int(s)].action)
    if preferred is None:
        return _nulls_kept(spark.createDataFrame(rows))
    # Joined as text (an all-empty list column has no type to infer), split back in Spark.
    rows["preferred_categories"] = rows["segment_id"].map(lambda s: "\u001f".join(preferred.get(int(s), [])))
    text = F.col("preferred_categories")
    return _nulls_kept(spark.createDataFrame(rows)).withColumn(
        "preferred_categories", F.when(text == "", F.array().cast("array<string>")).otherwise(F.split(text, "\u001f")))


def _nulls_kept(df: DataFrame) -> DataFrame:
    """Back from pandas, a null number is NaN: null again, as SQL readers expect (NaN is not null,
    and it sorts above every number)."""
    return df.select(*[F.when(~F.isnan(name), F.col(name)).alias(name) if kind == "double" else F.col(name)
                       for name, kind in df.dtypes])


def preferred_categories(categories: DataFrame, top: int = 3, threshold: float = 1.1) -> dict[int, list[str]]:
    """segment_id -> the categories it over-indexes on most (at least `threshold`), as 'name (1.8x)'."""
    rows = (categories.where((F.col("over_index") >= threshold) & (F.col("net_revenue") > 0))
            .select("segment_id", "category", "over_index").collect())
    out: dict[int, list[str]] = {}
    for row in sorted(rows, key=lambda r: (r["segment_id"], -r["over_index"], r["category"])):
        if len(out.setdefault(row["segment_id"], [])) < top:
            out[row["segment_id"]].append(f"{row['category']} ({row['over_index']:.1f}x)")
    return out
