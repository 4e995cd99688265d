"""Publish's own figures for the report: who is slipping away, where the value is, migration,
rule-based segments, rejected lines, monthly revenue, lost customers, top products and countries,
drawn from aggregated tables only. (The holdout check's figures are the lifetime-value run's.)"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ..core.charts import COLOURS, draw_as_ready, plt, save
from ..core.settings import Settings


def migration_matrix(migration: pd.DataFrame, path: Path) -> Path:
    """migration: from_date, to_date, from_segment, to_segment, customers."""
    table = migration.pivot_table(index="from_segment", columns="to_segment", values="customers", fill_value=0)
    fig, ax = plt.subplots(figsize=(max(1.3 * len(table.columns) + 3, 7), max(0.55 * len(table.index) + 2, 4)))
    image = ax.imshow(table.values, cmap="Blues", aspect="auto")
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(table.index)), table.index, fontsize=8)
    for i in range(len(table.index)):
        for j in range(len(table.columns)):
            ax.text(j, i, f"{int(table.iloc[i, j]):,}", ha="center", va="center", fontsize=8,
                    color="white" if table.iloc[i, j] > table.values.max() / 2 else "black")
    fig.colorbar(image, ax=ax, label="customers")
    ax.set_title("Segment migration between the last two snapshots")
    ax.set_xlabel(f"segment on {migration['to_date'].iloc[0]} (latest)")
    ax.set_ylabel(f"segment on {migration['from_date'].iloc[0]}")
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
    """monthly: month, days_counted, net_revenue, active_customers, new_customers. A month the data
    covers only in part (it starts or ends within it) is hatched and named with its days: its lower
    figures are not a fall. The first month's new customers are marked: nobody in it bought before."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    first_days = pd.to_datetime(monthly["month"])
    months = first_days.dt.strftime("%Y-%m")
    bars = ax.bar(months, monthly["net_revenue"], color=COLOURS(0), label="net revenue")
    for place, (bar, days, length, month) in enumerate(
            zip(bars, monthly["days_counted"], first_days.dt.days_in_month, months)):
        if days < length:  # its whole column shaded: the customer lines drop there too
            bar.set(alpha=0.45, hatch="//", label=f"{month}: {days} of its {length} days")
            ax.axvspan(place - 0.5, place + 0.5, color="0.92", zorder=0)
    ax.yaxis.set_major_formatter(lambda value, _: f"{value:,.0f}")
    ax.set_ylabel(f"net revenue ({currency})")
    ax.set_xlabel("month")
    ax.tick_params(axis="x", rotation=45)
    other = ax.twinx()
    other.plot(months, monthly["active_customers"], color=COLOURS(1), marker="o", label="active customers")
    other.plot(months, monthly["new_customers"], color=COLOURS(2), marker="s", label="new customers")
    if len(months):  # the data holds no purchase before its first month: everyone in it counts as new
        other.plot(months[:1], monthly["new_customers"][:1], linestyle="none", marker="s", markersize=9,
                   markerfacecolor="white", color=COLOURS(2), label=f"{months.iloc[0]}: the data's first month, "
                   "so every customer counts as new")
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


# Buckets of the slipping-away matrix: repeat purchases, and weeks since the last purchase.
FREQUENCY_BUCKETS = ((0, 0, "0"), (1, 1, "1"), (2, 2, "2"), (3, 3, "3"), (4, 5, "4-5"), (6, 9, "6-9"),
                     (10, 19, "10-19"), (20, None, "20+"))
WEEKS_SINCE_BUCKETS = ((0, 4, "< 4"), (4, 8, "4-8"), (8, 13, "8-13"), (13, 26, "13-26"), (26, 39, "26-39"),
                       (39, None, "39+"))


def _bucket(column, buckets, upper_inclusive: bool):
    """The position of each value's bucket: (low, high) inclusive of high for counts, exclusive for weeks."""
    position = F.lit(len(buckets) - 1)
    for index in reversed(range(len(buckets) - 1)):
        high = buckets[index][1]
        position = F.when(column <= high if upper_inclusive else column < high, index).otherwise(position)
    return position


def slipping_cells(lifetime_values):
    """Customers, mean p_alive and mean p_purchase_90d per (repeat purchases, weeks since last purchase)."""
    return (lifetime_values
            .groupBy(_bucket(F.col("x"), FREQUENCY_BUCKETS, True).alias("frequency"),
                     _bucket(F.col("T") - F.col("t_x"), WEEKS_SINCE_BUCKETS, False).alias("weeks_since"))
            .agg(F.count("*").alias("customers"), F.avg("p_alive").alias("p_alive"),
                 F.avg("p_purchase_90d").alias("p_purchase_90d")))


def slipping_matrix(cells: pd.DataFrame, path: Path) -> Path:
    """Two heat maps over repeat purchases x weeks since the last purchase: chance still a customer,
    chance of buying in the next 90 days; each cell also says how many customers it holds."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    shape = (len(WEEKS_SINCE_BUCKETS), len(FREQUENCY_BUCKETS))
    for ax, column, title in ((axes[0], "p_alive", "Chance still a customer (p_alive)"),
                              (axes[1], "p_purchase_90d", "Chance of buying in the next 90 days")):
        grid = np.full(shape, np.nan)
        counts = np.zeros(shape, dtype=int)
        for row in cells.itertuples():
            grid[row.weeks_since, row.frequency] = getattr(row, column)
            counts[row.weeks_since, row.frequency] = row.customers
        image = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
        for (i, j), value in np.ndenumerate(grid):
            if counts[i, j]:
                ax.text(j, i, f"{value:.0%}\n{counts[i, j]:,}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(shape[1]), [b[2] for b in FREQUENCY_BUCKETS], fontsize=8)
        ax.set_yticks(range(shape[0]), [b[2] for b in WEEKS_SINCE_BUCKETS], fontsize=8)
        ax.set_xlabel("repeat purchases so far")
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("weeks since the last purchase")
    fig.colorbar(image, ax=axes, fraction=0.03, label="probability (cell text: probability, customers)")
    fig.suptitle("Who is slipping away: by how often and how recently they bought", fontsize=11)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def value_shares(profiles: pd.DataFrame, path: Path) -> Path:
    """Per segment: its share of net revenue so far and of predicted lifetime value."""
    rows = profiles.sort_values("share_of_predicted_clv", ascending=True, na_position="first")
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(rows) + 1.8))
    y = np.arange(len(rows))
    ax.barh(y - 0.2, rows["share_of_net_revenue"].fillna(0), height=0.4, color=COLOURS(7), label="net revenue so far")
    ax.barh(y + 0.2, rows["share_of_predicted_clv"].fillna(0), height=0.4, color=COLOURS(0),
            label="predicted lifetime value")
    for position, value in zip(y, rows["share_of_predicted_clv"]):
        if pd.notna(value):
            ax.text(max(value, 0), position + 0.2, f" {value:.0%}", va="center", fontsize=8)
    ax.set_yticks(y, rows["segment_name"], fontsize=8)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_xlabel("share of the total over all customers")
    ax.set_title("Where the value is: revenue so far and predicted value, by segment")
    ax.legend(fontsize=8, loc="lower right")
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
        "slipping_matrix.png": (t.customer_lifetime_value, slipping_cells, slipping_matrix),
        "predicted_value_by_segment.png": (t.segment_profiles, lambda df: df, value_shares),
        # Nothing to draw until a second snapshot: the report says so instead.
        "segment_migration.png": (t.segment_migration, lambda df: df.where("from_date IS NOT NULL"),
                                  migration_matrix),
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
