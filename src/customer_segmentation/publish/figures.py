"""Publish's own figures for the report: migration, rule-based segments, rejected lines, monthly
revenue, lost customers, top products and countries, drawn from aggregated tables only."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ..core.charts import COLOURS, draw_as_ready, plt, save
from ..core.settings import Settings


def migration_matrix(migration: pd.DataFrame, path: Path) -> Path:
    """migration: from_segment, to_segment, customers."""
    table = migration.pivot_table(index="from_segment", columns="to_segment", values="customers", fill_value=0)
    fig, ax = plt.subplots(figsize=(1.3 * len(table.columns) + 3, 0.55 * len(table.index) + 2))
    image = ax.imshow(table.values, cmap="Blues", aspect="auto")
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(table.index)), table.index, fontsize=8)
    for i in range(len(table.index)):
        for j in range(len(table.columns)):
            ax.text(j, i, f"{int(table.iloc[i, j]):,}", ha="center", va="center", fontsize=8,
                    color="white" if table.iloc[i, j] > table.values.max() / 2 else "black")
    fig.colorbar(image, ax=ax, label="customers")
    ax.set_title("Segment migration: previous snapshot (rows) to latest (columns)")
    ax.set_xlabel("segment in the latest snapshot")
    ax.set_ylabel("segment in the previous snapshot")
    return save(fig, path)


def counts_bar(labels, values, path: Path, title: str, xlabel: str) -> Path:
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.5))
    ax.barh(list(labels), list(values), color=COLOURS(0))
    for y, value in enumerate(values):
        ax.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_xlim(0, max(values) * 1.15 if len(values) and max(values) > 0 else 1)
    return save(fig, path)


def monthly_revenue(monthly: pd.DataFrame, path: Path, currency: str) -> Path:
    """monthly: month, net_revenue, active_customers, new_customers."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    months = pd.to_datetime(monthly["month"]).dt.strftime("%Y-%m")
    ax.bar(months, monthly["net_revenue"], color=COLOURS(0), label="net revenue")
    ax.set_ylabel(f"net revenue ({currency})")
    ax.set_xlabel("month")
    ax.tick_params(axis="x", rotation=45)
    other = ax.twinx()
    other.plot(months, monthly["active_customers"], color=COLOURS(1), marker="o", label="active customers")
    other.plot(months, monthly["new_customers"], color=COLOURS(2), marker="s", label="new customers")
    other.set_ylabel("customers")
    lines = ax.get_legend_handles_labels()
    more = other.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8)
    ax.set_title("Monthly net revenue, active and new customers")
    return save(fig, path)


def lost_customers(lost: pd.DataFrame, path: Path) -> Path:
    """lost: month, customers_lost, days_since_month_end."""
    fig, ax = plt.subplots(figsize=(9, 4))
    months = pd.to_datetime(lost["month"]).dt.strftime("%Y-%m")
    colours = [COLOURS(3) if days > 90 else COLOURS(7) for days in lost["days_since_month_end"]]
    ax.bar(months, lost["customers_lost"], color=colours)
    ax.set_title("Customers whose last purchase fell in each month (grey: within 90 days, not lost yet)")
    ax.set_xlabel("month of last purchase")
    ax.set_ylabel("customers")
    ax.tick_params(axis="x", rotation=45)
    return save(fig, path)


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
        return counts_bar(labels, frame["net_revenue"], path, "Top products by net revenue",
                                f"net revenue ({currency})")

    figures = {  # file: (source table, aggregation, drawing)
        "segment_migration.png": (t.segment_migration, lambda df: df, migration_matrix),
        "rfm_segments.png": (
            t.rfm_segments, lambda df: df.groupBy("rfm_segment").count().orderBy(F.desc("count")),
            lambda f, path: counts_bar(f["rfm_segment"], f["count"], path, "Rule-based RFM segments",
                                             "customers")),
        "rejected_lines.png": (
            t.orders_quarantine, lambda df: df.groupBy("reject_reason").count().orderBy(F.desc("count")),
            lambda f, path: counts_bar(f["reject_reason"], f["count"], path,
                                             "Lines set aside in quarantine, by reason", "lines")),
        "monthly_revenue.png": (t.monthly_revenue, lambda df: df.orderBy("month"),
                                lambda f, path: monthly_revenue(f, path, currency)),
        "lost_customers.png": (t.lost_customers_monthly, lambda df: df.orderBy("month"), lost_customers),
        "top_products.png": (t.top_products, lambda df: df.orderBy("rank_by_revenue").limit(15), top_products),
        "countries.png": (
            t.revenue_by_country, lambda df: df.orderBy(F.desc("net_revenue")).limit(15),
            lambda f, path: counts_bar(f["country"], f["net_revenue"], path, "Net revenue by country (top 15)",
                                             f"net revenue ({currency})")),
    }
    def drawing(name: str, draw):
        return lambda data: draw(data, out / name) if data is not None and len(data) else None

    drawn = draw_as_ready([(partial(aggregate, table, build), drawing(name, draw))
                                 for name, (table, build, draw) in figures.items()])
    return [path for path in drawn if path is not None]
