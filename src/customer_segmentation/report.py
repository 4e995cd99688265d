"""The segment report: one self-contained HTML page for marketers, built from gold tables and the
figures already logged to MLflow (the model's figures by `train`, the others by `publish`).

`publish` draws the report's own figures once (from aggregates) and logs them to MLflow; the
report embeds those same PNG files, so MLflow and the report never disagree.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import tempfile
from functools import partial
from pathlib import Path

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from . import plots, tracking
from .features import RULE_SEGMENT_ID
from .settings import Settings

MODEL_FIGURES = ("segment_sizes.png", "segment_profile_heatmap.png", "segment_box_plots.png",
                 "segment_projection.png", "metrics_by_k.png", "elbow_wcss.png")


def draw_report_figures(spark: SparkSession, settings: Settings, out: Path) -> list[Path]:
    """The figures of the report that do not come from training, from aggregated tables only.

    The aggregates are queried side by side while the figures already possible are drawn.
    """
    t, currency = settings.tables, settings.currency

    def aggregate(table: str, build) -> pd.DataFrame | None:
        # `publish` can run on its own over a feature table alone; a figure whose source table is
        # not there is left out (the report says so) rather than failing the publish.
        return build(spark.table(table)).toPandas() if spark.catalog.tableExists(table) else None

    def top_products(frame: pd.DataFrame, path: Path) -> Path:
        labels = [f"{d} ({c})"[:45] for d, c in zip(frame["description"], frame["stock_code"])]
        return plots.counts_bar(labels, frame["net_revenue"], path, "Top products by net revenue",
                                f"net revenue ({currency})")

    figures = {  # file: (source table, aggregation, drawing)
        "segment_migration.png": (t.segment_migration, lambda df: df, plots.migration_matrix),
        "rfm_segments.png": (
            t.rfm_segments, lambda df: df.groupBy("rfm_segment").count().orderBy(F.desc("count")),
            lambda f, path: plots.counts_bar(f["rfm_segment"], f["count"], path, "Rule-based RFM segments",
                                             "customers")),
        "rejected_lines.png": (
            t.orders_quarantine, lambda df: df.groupBy("reject_reason").count().orderBy(F.desc("count")),
            lambda f, path: plots.counts_bar(f["reject_reason"], f["count"], path,
                                             "Lines set aside in quarantine, by reason", "lines")),
        "monthly_revenue.png": (t.monthly_revenue, lambda df: df.orderBy("month"),
                                lambda f, path: plots.monthly_revenue(f, path, currency)),
        "lost_customers.png": (t.lost_customers_monthly, lambda df: df.orderBy("month"), plots.lost_customers),
        "top_products.png": (t.top_products, lambda df: df.orderBy("rank_by_revenue").limit(15), top_products),
        "countries.png": (
            t.revenue_by_country, lambda df: df.orderBy(F.desc("net_revenue")).limit(15),
            lambda f, path: plots.counts_bar(f["country"], f["net_revenue"], path, "Net revenue by country (top 15)",
                                             f"net revenue ({currency})")),
    }
    def drawing(name: str, draw):
        return lambda data: draw(data, out / name) if data is not None and len(data) else None

    drawn = plots.draw_as_ready([(partial(aggregate, table, build), drawing(name, draw))
                                 for name, (table, build, draw) in figures.items()])
    return [path for path in drawn if path is not None]


def _img(path: Path | None, alt: str) -> str:
    if path is None or not path.is_file():
        return f'<p class="missing">Figure not available: {html.escape(alt)}</p>'
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> str:
    formats = formats or {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for column in frame.columns:
            value = row[column]
            text = formats[column].format(value) if column in formats and pd.notna(value) else (
                "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value))
            cells.append(f"<td>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _figures(settings: Settings, workdir: Path) -> tuple[dict[str, Path], str, dict]:
    """Download the champion's training figures and the latest publish figures from MLflow."""
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
    champion = {"label": training.data.tags.get("champion", ""), "version": version.version,
                "metrics": {k.removeprefix("champion_"): v for k, v in training.data.metrics.items()
                            if k.startswith("champion_")} | {
                    k: v for k, v in training.data.metrics.items() if k.startswith("silhouette_")}}
    return found, selection.read_text(), champion


def build(spark: SparkSession, settings: Settings) -> Path:
    """Write <state_root>/report/index.html and return its path."""
    t = settings.tables
    profiles = spark.table(t.segment_profiles).orderBy(F.desc("customers")).toPandas()
    as_of_date = profiles["as_of_date"].iloc[0]
    metrics = (spark.table(t.clustering_metrics).where(F.col("as_of_date") == F.lit(as_of_date))
               .orderBy("algorithm", "k").toPandas())
    migration = spark.table(t.segment_migration).orderBy(F.desc("customers")).toPandas()
    rfm = spark.table(t.rfm_segments).groupBy("rfm_segment").count().orderBy(F.desc("count")).toPandas()
    quality = _quality(spark, settings)
    concentration = spark.table(t.revenue_concentration).orderBy("top_percent").toPandas()
    tiers = (spark.table(t.value_tiers).groupBy("value_tier").agg(F.count("*").alias("customers"))
             .orderBy(F.expr("array_position(array('High', 'Mid', 'Low'), value_tier)")).toPandas()
             if spark.catalog.tableExists(t.value_tiers) else None)
    who = _who_they_are(spark, settings)
    with tempfile.TemporaryDirectory() as tmp:
        figures, selection, champion = _figures(settings, Path(tmp))
        page = _render(settings, as_of_date, profiles, metrics, migration, rfm, quality, concentration, figures,
                       selection, champion, tiers, who)
    settings.report_dir.mkdir(parents=True, exist_ok=True)
    path = settings.report_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _who_they_are(spark: SparkSession, settings: Settings) -> str | None:
    """With the optional sources: attribute mix, engagement and preferred categories per segment."""
    t, parts = settings.tables, []
    sources = settings.sources_in_use
    if "customers" in sources and spark.catalog.tableExists(t.segment_attributes):
        mix = spark.table(t.segment_attributes).where(F.col("attribute").isin("loyalty_tier", "age_band", "gender"))
        for attribute in ("loyalty_tier", "age_band", "gender"):
            frame = (mix.where(F.col("attribute") == attribute).groupBy("segment_name").pivot("value")
                     .agg(F.first("share_of_segment")).orderBy("segment_name").toPandas().fillna(0.0))
            parts.append(f"<p>{html.escape(attribute.replace('_', ' ').capitalize())}, share of each segment:</p>"
                         + _table(frame, {c: "{:.0%}" for c in frame.columns if c != "segment_name"}))
    profiles = spark.table(t.segment_profiles)
    extra = [c for c in ("mean_engagement_score", "mean_behaviour_score", "mean_age", "mean_loyalty_level",
                         "preferred_categories") if c in profiles.columns]
    if extra:
        frame = profiles.select("segment_name", *extra).orderBy("segment_name").toPandas()
        if "preferred_categories" in frame:
            frame["preferred_categories"] = frame["preferred_categories"].map(lambda v: ", ".join(v) or "none")
        parts.append("<p>Engagement and preferred product categories (over-index: the segment's share of "
                     "spend in the category over everyone's):</p>"
                     + _table(frame, {c: "{:,.2f}" for c in extra if c.startswith("mean_")}))
    if "products" in sources and spark.catalog.tableExists(t.segment_categories):
        margin = (spark.table(t.segment_categories).groupBy("segment_name")
                  .agg((F.sum("margin") / F.sum(F.when(F.col("margin").isNotNull(), F.col("net_revenue"))))
                       .alias("margin_rate"), F.sum("net_revenue").alias("net_revenue"))
                  .orderBy(F.desc("net_revenue")).toPandas())
        parts.append("<p>Margin by segment (lines whose product cost is known):</p>"
                     + _table(margin, {"margin_rate": "{:.1%}", "net_revenue": "{:,.0f}"}))
    return "".join(parts) or None


def _quality(spark: SparkSession, settings: Settings) -> dict:
    t = settings.tables
    reasons = (spark.table(t.orders_quarantine).groupBy("reject_reason").count().orderBy(F.desc("count"))
               .toPandas().rename(columns={"reject_reason": "reason", "count": "lines"}))
    orders = spark.table(t.orders)
    kept = spark.table(t.customer_features).select("customer_id")
    # Customers seen only on rejected lines never reach the features: say how many, and why.
    rejected_customers = (spark.table(t.orders_quarantine)
                          .select(F.regexp_replace(F.trim("customer_id"), r"\.0+$", "").alias("customer_id"),
                                  "reject_reason")
                          .where(F.col("customer_id").rlike(r"\S")).join(kept, "customer_id", "left_anti")
                          .join(orders.select("customer_id").distinct(), "customer_id", "left_anti")
                          .groupBy("reject_reason").agg(F.countDistinct("customer_id").alias("customers"))
                          .toPandas().rename(columns={"reject_reason": "only on lines rejected as"}))
    return {
        "lines_in": spark.table(t.transactions_raw).count(),
        "orders": orders.count(),
        "guest_lines": orders.where("NOT has_customer").count(),
        "non_product_lines": orders.where("NOT is_product").count(),
        "customers": kept.count(),
        "reasons": reasons,
        "excluded": rejected_customers,
    }


def _preferred(profile) -> str:
    categories = getattr(profile, "preferred_categories", None)
    if categories is None or not len(categories):
        return ""
    return f'<div class="share">Buys more than others: {html.escape(", ".join(categories))}</div>'


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2433;background:#f6f7fb}
header{background:#1f3b70;color:#fff;padding:24px 40px}header h1{margin:0 0 6px}main{padding:8px 40px 40px}
section{background:#fff;border-radius:10px;padding:18px 24px;margin:18px 0;box-shadow:0 1px 3px #0002}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(290px,1fr));gap:14px}
.card{border:1px solid #dfe3ee;border-radius:10px;padding:14px 16px;background:#fbfcff}
.card h3{margin:0 0 6px;color:#1f3b70}.card.rule{background:#f7f7f7;border-style:dashed}.share{font-size:13px;color:#4a5470;margin-bottom:8px}
.action{margin-top:10px;padding:8px 10px;background:#eef6ee;border-left:4px solid #3a8d3a;font-size:14px}
img{max-width:100%;height:auto;margin:8px 0;border:1px solid #eee}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #dde;padding:4px 8px;text-align:right}
th{background:#eef1f8}td:first-child,th:first-child{text-align:left}.missing{color:#a33}
.kpis{display:flex;gap:18px;flex-wrap:wrap}.kpi{background:#eef1f8;border-radius:8px;padding:8px 14px}
.kpi b{display:block;font-size:20px}pre{white-space:pre-wrap;background:#f3f4f8;padding:10px;border-radius:6px}
"""


def _render(settings, as_of_date, profiles, metrics, migration, rfm, quality, concentration, figures, selection,
            champion, tiers=None, who=None) -> str:
    currency = html.escape(settings.currency)
    champion_label = html.escape(champion["label"])
    def share(value) -> str:
        return "n/a" if value is None or pd.isna(value) else f"{value:.1%}"

    def card(r) -> str:
        by_rule = r.segment_id == RULE_SEGMENT_ID
        note = ('<div class="share"><b>Set by rule, outside the model:</b> customers without net purchases '
                'cannot be described by how they buy.</div>' if by_rule else "")
        return f"""<div class="card{' rule' if by_rule else ''}"><h3>{html.escape(r.segment_name)}</h3>
<div class="share">{r.customers:,} customers · {r.share_of_customers:.1%} of customers ·
{share(r.share_of_net_revenue)} of net revenue</div>{note}
<div>{html.escape(r.description)}</div>
<div class="share">Median {r.median_monetary:,.0f} {currency} net · {r.median_frequency:.0f} orders ·
last order {r.median_recency_days:.0f} days ago · mostly {html.escape(r.dominant_rfm_segment)} by RFM rules ·
{html.escape(", ".join(r.top_countries))}</div>
{_preferred(r)}<div class="action"><b>Recommended:</b> {html.escape(r.recommended_action)}</div></div>"""

    cards = "".join(card(r) for r in profiles.itertuples())
    rule_rows = profiles[profiles["segment_id"] == RULE_SEGMENT_ID]
    modelled = int(profiles["customers"].sum() - rule_rows["customers"].sum())
    intro = (f"<p>{modelled:,} customers are segmented by the model ({champion_label}). "
             + (f"{int(rule_rows['customers'].iloc[0]):,} customers ({rule_rows['share_of_customers'].iloc[0]:.1%}) "
                f"have no net purchases of goods (returns and cancellations cancel out or exceed what they bought): "
                f"their purchase behaviour cannot be described, so they are left out of the model and form the "
                f"segment <b>{html.escape(rule_rows['segment_name'].iloc[0])}</b> by rule.</p>"
                if len(rule_rows) else "Every customer has net purchases.</p>"))
    metric_columns = ["algorithm", "k", "silhouette_sq_euclidean", "davies_bouldin", "calinski_harabasz",
                      "smallest_segment_share", "smallest_segment_revenue_share", "unactionable_segments",
                      "is_champion", "skipped_reason"]
    sections = [
        ("segments", "The segments", f"{intro}<div class='cards'>{cards}</div>"),
        ("profiles", "What sets them apart",
         _img(figures.get("segment_profile_heatmap.png"), "segment profile heatmap")
         + _img(figures.get("segment_box_plots.png"), "feature distributions per segment")
         + _img(figures.get("segment_sizes.png"), "customers per segment")
         + _img(figures.get("segment_projection.png"), "segments in two dimensions")),
        ("migration", "Movement since the previous snapshot",
         _img(figures.get("segment_migration.png"), "segment migration")
         + _table(migration, {"customers": "{:,}"})),
        ("rfm", "Rule-based RFM segments",
         _img(figures.get("rfm_segments.png"), "rule-based RFM segments")
         + _table(rfm.rename(columns={"count": "customers"}), {"customers": "{:,}"})
         + ("<p>Value tiers (recency, frequency and revenue each clustered in four, scores summed; "
            "gold.value_tiers):</p>" + _table(tiers, {"customers": "{:,}"}) if tiers is not None else "")),
        ("model", "How the segments were chosen",
         f"<p>Champion: <b>{html.escape(champion['label'])}</b>, registered as {html.escape(settings.model_name)} "
         f"version {html.escape(str(champion['version']))}.</p><pre>{html.escape(selection)}</pre>"
         + _img(figures.get("metrics_by_k.png"), "metrics by k") + _img(figures.get("elbow_wcss.png"), "elbow")
         + _table(metrics[metric_columns], {"silhouette_sq_euclidean": "{:.4f}", "davies_bouldin": "{:.4f}",
                                            "calinski_harabasz": "{:,.1f}", "smallest_segment_share": "{:.1%}",
                                            "smallest_segment_revenue_share": "{:.1%}",
                                            "unactionable_segments": "{:.0f}"})),
        ("quality", "Data quality",
         f"""<div class="kpis"><div class="kpi"><b>{quality['lines_in']:,}</b>lines received</div>
<div class="kpi"><b>{quality['orders']:,}</b>valid order lines</div>
<div class="kpi"><b>{quality['lines_in'] - quality['orders']:,}</b>lines in quarantine</div>
<div class="kpi"><b>{quality['guest_lines']:,}</b>guest lines (sales without a customer)</div>
<div class="kpi"><b>{quality['customers']:,}</b>customers segmented</div></div>"""
         + _img(figures.get("rejected_lines.png"), "rejected lines by reason") + _table(quality["reasons"],
                                                                                      {"lines": "{:,}"})
         + "<p>Customers excluded (they appear only on rejected lines):</p>"
         + (_table(quality["excluded"], {"customers": "{:,}"}) if len(quality["excluded"]) else "<p>none</p>")
         + f"<p>Guest lines count in revenue, not in customer features; {quality['non_product_lines']:,} lines of "
           "postage, fees and adjustments are kept but not counted as spend on goods.</p>"),
        ("insights", "Business insights",
         _img(figures.get("monthly_revenue.png"), "monthly revenue and active customers")
         + _img(figures.get("lost_customers.png"), "customers lost per month")
         + _img(figures.get("top_products.png"), "top products")
         + _img(figures.get("countries.png"), "revenue by country")
         + "<p>Revenue concentration:</p>"
         + _table(concentration[["top_percent", "customers", "share_of_net_revenue"]],
                  {"customers": "{:,}", "share_of_net_revenue": "{:.1%}"})),
    ]
    if who:
        sections.insert(2, ("who", "Who they are and what they buy", who))
    body = "".join(f'<section id="{key}"><h2>{html.escape(title)}</h2>{content}</section>'
                   for key, title, content in sections)
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Customer segments as of {as_of_date}</title><style>{CSS}</style></head><body>
<header><h1>Customer segments as of {as_of_date}</h1>
<div>{len(profiles)} segments · {int(profiles['customers'].sum()):,} customers · generated {generated}</div></header>
<main>{body}</main></body></html>"""
