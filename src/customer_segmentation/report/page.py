"""The segment report: one self-contained HTML page for marketers, built from gold tables and the
figures already logged to MLflow (the model's figures by `train`, the holdout check's by
`lifetime_value`, the others by `publish`).

The page is the Jinja2 template `templates/report.html.j2` (autoescaping on); this module only
gathers what it shows. It embeds the same PNG files MLflow keeps, so the two never disagree.
"""

from __future__ import annotations

import base64
import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ..core.console import counted, whole
from ..core.rules import cleaning_rules
from ..core.settings import Settings
from ..gold.features import RULE_SEGMENT_ID
from ..models import btyd, tracking
from ..silver.cleaning import clean_customer_id

TEMPLATES = Path(__file__).with_name("templates")


def table(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> dict:
    """A table for the template: its header and its cells as text, formatted where a format is given."""
    formats = formats or {}

    def text(column: str, value) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return ""
        return formats[column].format(value) if column in formats else str(value)

    # By tuples, not `iterrows`: a row as a Series takes one type, so a table of numbers alone read 44.0 customers.
    return {"columns": [str(c) for c in frame.columns],
            "rows": [[text(c, value) for c, value in zip(frame.columns, row)]
                     for row in frame.itertuples(index=False, name=None)]}


def data_uri(path: Path | None) -> str | None:
    if path is None or not path.is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _figures(settings: Settings, workdir: Path, fit_run_id: str | None) -> tuple[dict[str, Path], str, dict]:
    """Download from MLflow the champion's training figures, the holdout figures of the lifetime-value
    fit `fit_run_id` (the one gold's values come from) and the latest publish figures."""
    import mlflow

    tracking.configure(settings)
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias(settings.model_name, tracking.CHAMPION_ALIAS)
    training = client.get_run(version.run_id)
    found: dict[str, Path] = {}
    folder = tracking.download_run_artifacts(version.run_id, "figures", workdir / "training")
    found.update({p.name: p for p in folder.glob("*.png")})
    selection = tracking.download_run_artifacts(version.run_id, "selection.txt", workdir / "selection")
    publish_runs = client.search_runs([training.info.experiment_id],
                                      filter_string=f"tags.`{tracking.TASK_TAG}` = 'publish'",
                                      order_by=["attributes.start_time DESC"], max_results=1)
    if publish_runs:
        folder = tracking.download_run_artifacts(publish_runs[0].info.run_id, "report_figures", workdir / "publish")
        found.update({p.name: p for p in folder.glob("*.png")})
    validations = client.search_runs([training.info.experiment_id],
                                     filter_string=f"tags.`mlflow.parentRunId` = '{fit_run_id}'",
                                     max_results=1) if fit_run_id else []
    if validations and client.list_artifacts(validations[0].info.run_id, "figures"):  # none if it was skipped
        folder = tracking.download_run_artifacts(validations[0].info.run_id, "figures", workdir / "holdout")
        found.update({p.name: p for p in folder.glob("*.png")})
    champion = {"label": training.data.tags.get("champion", ""), "version": version.version}
    return found, selection.read_text(), champion


def _who_they_are(spark: SparkSession, settings: Settings) -> list[tuple[str, dict]]:
    """With the optional sources: attribute mix, engagement and preferred categories per segment."""
    t, parts = settings.tables, []
    sources = settings.sources_in_use
    if "customers" in sources and spark.catalog.tableExists(t.segment_attributes):
        mix = spark.table(t.segment_attributes).where(F.col("attribute").isin("loyalty_tier", "age_band", "gender"))
        for attribute in ("loyalty_tier", "age_band", "gender"):
            frame = (mix.where(F.col("attribute") == attribute).groupBy("segment_name").pivot("value")
                     .agg(F.first("share_of_segment")).orderBy("segment_name").toPandas().fillna(0.0))
            parts.append((f"{attribute.replace('_', ' ').capitalize()}, share of each segment:",
                          table(frame, {c: "{:.0%}" for c in frame.columns if c != "segment_name"})))
    profiles = spark.table(t.segment_profiles)
    extra = [c for c in ("mean_engagement_score", "mean_behaviour_score", "mean_age", "mean_loyalty_level",
                         "preferred_categories") if c in profiles.columns]
    if extra:
        frame = profiles.select("segment_name", *extra).orderBy("segment_name").toPandas()
        if "preferred_categories" in frame:
            frame["preferred_categories"] = frame["preferred_categories"].map(lambda v: ", ".join(v) or "none")
        parts.append(("Engagement and preferred product categories (over-index: the segment's share of spend in "
                      "the category over everyone's):",
                      table(frame, {c: "{:,.2f}" for c in extra if c.startswith("mean_")})))
    if "products" in sources and spark.catalog.tableExists(t.segment_categories):
        margin = (spark.table(t.segment_categories).groupBy("segment_name")
                  .agg((F.sum("margin") / F.sum(F.when(F.col("margin").isNotNull(), F.col("net_revenue"))))
                       .alias("margin_rate"), F.sum("net_revenue").alias("net_revenue"))
                  .orderBy(F.desc("net_revenue")).toPandas())
        parts.append(("Margin by segment (lines whose product cost is known):",
                      table(margin, {"margin_rate": "{:.1%}", "net_revenue": "{:,.0f}"})))
    return parts


def _quality(spark: SparkSession, settings: Settings) -> dict:
    t = settings.tables
    reasons = (spark.table(t.orders_quarantine).groupBy("reject_reason").count().orderBy(F.desc("count"))
               .toPandas().rename(columns={"reject_reason": "reason", "count": "lines"}))
    orders = spark.table(t.orders)
    kept = spark.table(t.customer_features).select("customer_id")
    # Customers seen only on rejected lines never reach the features: say how many, and why. Their
    # ids are read as silver reads them, so a 'nan' or 'n/a' is no customer here either.
    rejected_customers = (spark.table(t.orders_quarantine)
                          .select(clean_customer_id(F.col("customer_id"), cleaning_rules()).alias("customer_id"),
                                  "reject_reason")
                          .where(F.col("customer_id").isNotNull()).join(kept, "customer_id", "left_anti")
                          .join(orders.select("customer_id").distinct(), "customer_id", "left_anti")
                          .groupBy("reject_reason").agg(F.countDistinct("customer_id").alias("customers"))
                          .toPandas().rename(columns={"reject_reason": "only on lines rejected as"}))
    return {
        "lines_in": spark.table(t.transactions_raw).count(),
        "orders": orders.count(),
        "guest_lines": orders.where("NOT has_customer").count(),
        "non_product_lines": orders.where("NOT is_product").count(),
        "customers": kept.count(),
        "reasons": table(reasons, {"lines": "{:,}"}),
        "excluded": table(rejected_customers, {"customers": "{:,}"}) if len(rejected_customers) else None,
    }


def cut_to_tenths(shares: pd.Series) -> pd.Series:
    """Shares cut (not rounded) to a tenth of a percent: a churn band's bound is exact, and 19.996%
    written 20.0% or 20% read as outside its band (likely lost: under 20%)."""
    return np.floor((shares * 1000).round(6)) / 1000  # round(6) first: 0.57 * 1000 is 569.99...


def _forecast_error(relative_error: float) -> str:
    """The holdout's (predicted - actual) / actual in words: a bare "-26%" did not say which way."""
    if pd.isna(relative_error):
        return "n/a"
    return f"the forecast {abs(relative_error):.0%} {'short' if relative_error < 0 else 'over'}"


def _slipping(spark: SparkSession, settings: Settings) -> dict:
    """Churn-risk bands, the valuable customers at risk or likely lost and the holdout check, for "Who is
    slipping away"."""
    t = settings.tables
    values = spark.table(t.customer_lifetime_value)
    bands = (values.groupBy("churn_risk").agg(F.count("*").alias("customers"),
                                              F.sum("predicted_clv").alias("predicted_clv"))
             .toPandas().set_index("churn_risk"))
    at_risk = spark.table(t.high_value_at_risk)
    high_value = at_risk.agg(F.count("*").alias("customers"), F.sum("net_revenue").alias("net_revenue"),
                             F.sum("predicted_clv").alias("predicted_clv")).first()
    top = at_risk.orderBy(F.desc("net_revenue")).limit(10).select(
        "customer_id", "segment_name", "churn_risk", "p_purchase_90d", "net_revenue", "predicted_clv", "recency_days",
        "main_country").toPandas()
    fit = (spark.table(t.clv_model_parameters).orderBy(F.desc("as_of_date")).limit(1).toPandas()
           .iloc[0].to_dict())
    customers = int(bands["customers"].sum())

    def band(name: str) -> dict:
        row = bands.loc[name] if name in bands.index else None
        count = int(row["customers"]) if row is not None else 0
        return {"customers": f"{count:,}", "share": f"{count / customers:.0%}" if customers else "n/a",
                "value": f"{(row['predicted_clv'] if row is not None else 0) or 0:,.0f}"}

    mean_p_alive = values.agg(F.avg("p_alive")).first()[0]
    return {
        "bands": {name: band(name) for name in ("active", "at risk", "likely lost")},
        "active_from": f"{btyd.ACTIVE_FROM:.0%}", "at_risk_from": f"{btyd.AT_RISK_FROM:.0%}",
        "window_days": btyd.CHURN_WINDOW_DAYS,
        "horizon_days": settings.clv_horizon_days,
        "total_value": f"{bands['predicted_clv'].sum():,.0f}",
        "high_value": {"customers": f"{high_value['customers']:,}",
                       "net_revenue": f"{high_value['net_revenue'] or 0:,.0f}",
                       "predicted_clv": f"{high_value['predicted_clv'] or 0:,.0f}"},
        "top": table(top.assign(p_purchase_90d=cut_to_tenths(top["p_purchase_90d"])),
                     {"p_purchase_90d": "{:.1%}", "net_revenue": "{:,.0f}", "predicted_clv": "{:,.0f}"}),
        "mostly_alive": mean_p_alive is not None and mean_p_alive > 0.95,
        "not_fitted": fit.get("not_fitted_reason"),
        "holdout": None if pd.isna(fit.get("holdout_actual")) else {
            "days": int(fit["holdout_days"]), "start": fit["calibration_end"],
            "predicted": f"{fit['holdout_predicted']:,.0f}", "actual": f"{fit['holdout_actual']:,.0f}",
            "error": _forecast_error(fit["holdout_relative_error"]),
            "mae": f"{fit['holdout_mae']:.2f}"},
        "holdout_skipped": fit.get("validation_skipped_reason"),
        "fit_run_id": fit.get("mlflow_run_id"),
    }


def _share(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.1%}"


def _cards(profiles: pd.DataFrame) -> list[dict]:
    return [{
        "name": r.segment_name, "by_rule": r.segment_id == RULE_SEGMENT_ID, "customers": f"{r.customers:,}",
        "share_of_customers": f"{r.share_of_customers:.1%}", "share_of_net_revenue": _share(r.share_of_net_revenue),
        "description": r.description, "median_monetary": whole(r.median_monetary),
        "median_orders": counted(r.median_frequency, "order"), "median_recency_days": whole(r.median_recency_days),
        "dominant_rfm_segment": r.dominant_rfm_segment, "countries": ", ".join(r.top_countries),
        "preferred": ", ".join(getattr(r, "preferred_categories", None) or []), "action": r.recommended_action,
    } for r in profiles.itertuples()]


def build(spark: SparkSession, settings: Settings) -> Path:
    """Write <state_root>/report/index.html and return its path."""
    t = settings.tables
    profiles = spark.table(t.segment_profiles).orderBy(F.desc("customers")).toPandas()
    as_of_date = profiles["as_of_date"].iloc[0]
    metrics = (spark.table(t.clustering_metrics).where(F.col("as_of_date") == F.lit(as_of_date))
               .orderBy("algorithm", "k").toPandas())
    migration = spark.table(t.segment_migration).orderBy(F.desc("customers")).toPandas()
    rfm = spark.table(t.rfm_segments).groupBy("rfm_segment").count().orderBy(F.desc("count")).toPandas()
    concentration = spark.table(t.revenue_concentration).orderBy("top_percent").toPandas()
    tiers = (spark.table(t.value_tiers).groupBy("value_tier").agg(F.count("*").alias("customers"))
             .orderBy(F.expr("array_position(array('High', 'Mid', 'Low'), value_tier)")).toPandas()
             if spark.catalog.tableExists(t.value_tiers) else None)
    rule = profiles[profiles["segment_id"] == RULE_SEGMENT_ID]
    metric_columns = ["algorithm", "k", "silhouette_sq_euclidean", "davies_bouldin", "calinski_harabasz",
                      "smallest_segment_share", "smallest_segment_revenue_share", "unactionable_segments",
                      "is_champion", "skipped_reason"]
    context = {
        "as_of_date": as_of_date, "currency": settings.currency, "model_name": settings.model_name,
        "segments": len(profiles), "customers": f"{int(profiles['customers'].sum()):,}",
        "generated": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cards": _cards(profiles),
        "modelled": f"{int(profiles['customers'].sum() - rule['customers'].sum()):,}",
        "rule": ({"customers": f"{int(rule['customers'].iloc[0]):,}", "name": rule["segment_name"].iloc[0],
                  "share": f"{rule['share_of_customers'].iloc[0]:.1%}"} if len(rule) else None),
        "migration": table(migration, {"customers": "{:,}"}),
        "first_snapshot": bool(migration["from_date"].isna().all()),
        "rfm": table(rfm.rename(columns={"count": "customers"}), {"customers": "{:,}"}),
        "tiers": table(tiers, {"customers": "{:,}"}) if tiers is not None else None,
        "metrics": table(metrics[metric_columns], {
            "silhouette_sq_euclidean": "{:.4f}", "davies_bouldin": "{:.4f}", "calinski_harabasz": "{:,.1f}",
            "smallest_segment_share": "{:.1%}", "smallest_segment_revenue_share": "{:.1%}",
            "unactionable_segments": "{:.0f}"}),
        "quality": _quality(spark, settings),
        "concentration": table(concentration[["top_percent", "customers", "share_of_net_revenue"]],
                               {"top_percent": "{}%", "customers": "{:,}", "share_of_net_revenue": "{:.1%}"}),
        "who": _who_they_are(spark, settings),
        "slipping": _slipping(spark, settings),
    }
    with tempfile.TemporaryDirectory() as tmp:
        figures, selection, champion = _figures(settings, Path(tmp), context["slipping"]["fit_run_id"])
        page = render(context | {"figures": {name: data_uri(path) for name, path in figures.items()},
                                 "selection": selection, "champion": champion})
    settings.report_dir.mkdir(parents=True, exist_ok=True)
    path = settings.report_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def render(context: dict) -> str:
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                              trim_blocks=True, lstrip_blocks=True)
    return environment.get_template("report.html.j2").render(**context)
