"""Figures for MLflow and the report: matplotlib PNGs drawn from aggregates only.

Every input here is already aggregated (per candidate, per segment, or binned counts): no
customer-level row ever reaches a plot.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ALGORITHM_LABELS = {"kmeans": "KMeans", "bisecting_kmeans": "Bisecting KMeans", "gaussian_mixture": "Gaussian mixture"}
FEATURE_UNITS = {
    "recency_days": "days", "tenure_days": "days", "avg_days_between_orders": "days", "frequency": "orders",
    "distinct_products": "products", "return_rate": "share", "monetary": "currency", "gross_revenue": "currency",
    "returns_value": "currency", "avg_order_value": "currency",
}
COLOURS = plt.get_cmap("tab10")


def draw_as_ready(figures: list[tuple[Callable[[], Any], Callable[[Any], Path | None]]]) -> list[Path | None]:
    """Each figure's (query, drawing): the queries run a few at a time while this thread draws, in
    order, each figure whose data is back. A query is mostly Spark's planning and scheduling, a
    drawing Python's; matplotlib stays in one thread."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        pending = [(pool.submit(query), draw) for query, draw in figures]
        return [draw(data.result()) for data, draw in pending]


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _unit(feature: str, currency: str) -> str:
    unit = FEATURE_UNITS.get(feature, "")
    return currency if unit == "currency" else unit


def _legend_or_note(ax) -> None:
    """A legend when something was plotted, otherwise say why the panel is empty."""
    if ax.get_lines():
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no candidate could be trained", ha="center", va="center", transform=ax.transAxes)


def _trained(metrics: pd.DataFrame) -> pd.DataFrame:
    """The candidates that were trained: a skipped one has no point on a curve, whatever it measured."""
    return metrics[metrics["skipped_reason"].isna()]


def elbow(metrics: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for algorithm, rows in _trained(metrics).dropna(subset=["wcss"]).groupby("algorithm", sort=False):
        ax.plot(rows["k"], rows["wcss"], marker="o", label=ALGORITHM_LABELS.get(algorithm, algorithm))
    ax.set_title("Elbow: within-cluster sum of squares by number of segments")
    ax.set_xlabel("number of segments (k)")
    ax.set_ylabel("WCSS (standardised feature units²)")
    _legend_or_note(ax)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def metrics_by_k(metrics: pd.DataFrame, path: Path) -> Path:
    panels = [("silhouette_sq_euclidean", "silhouette (squared Euclidean), higher is better"),
              ("davies_bouldin", "Davies–Bouldin index, lower is better"),
              ("calinski_harabasz", "Calinski–Harabasz index, higher is better")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, (metric, label) in zip(axes, panels):
        for algorithm, rows in _trained(metrics).dropna(subset=[metric]).groupby("algorithm", sort=False):
            ax.plot(rows["k"], rows[metric], marker="o", label=ALGORITHM_LABELS.get(algorithm, algorithm))
        ax.set_title(label)
        ax.set_xlabel("number of segments (k)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    _legend_or_note(axes[0])
    fig.suptitle("Clustering quality by number of segments and algorithm")
    return _save(fig, path)


def segment_sizes(sizes: pd.DataFrame, path: Path, title: str) -> Path:
    """sizes: segment_name, customers, share (sorted as they should appear)."""
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(sizes) + 1.5))
    bars = ax.barh(sizes["segment_name"], sizes["customers"], color=[COLOURS(i % 10) for i in range(len(sizes))])
    for bar, share in zip(bars, sizes["share"]):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {share:.1%}", va="center")
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel("customers")
    ax.set_xlim(0, sizes["customers"].max() * 1.18)
    return _save(fig, path)


def profile_heatmap(z_scores: pd.DataFrame, medians: pd.DataFrame, path: Path, currency: str) -> Path:
    """Rows: segments; columns: features. Colour = z-score of the segment mean; text = segment median."""
    fig, ax = plt.subplots(figsize=(1.6 * len(z_scores.columns) + 3, 0.6 * len(z_scores) + 2))
    limit = max(1.0, float(np.nanmax(np.abs(z_scores.values))))
    image = ax.imshow(z_scores.values, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(z_scores.columns)),
                  [f"{c}\n({_unit(c, currency)})" for c in z_scores.columns], rotation=0, fontsize=8)
    ax.set_yticks(range(len(z_scores.index)), z_scores.index)
    for i in range(len(z_scores.index)):
        for j, column in enumerate(z_scores.columns):
            value = medians.iloc[i, j]
            ax.text(j, i, f"{value:,.0f}" if abs(value) >= 10 else f"{value:.2f}", ha="center", va="center",
                    fontsize=8, color="white" if abs(z_scores.iloc[i, j]) > 0.6 * limit else "black")
    fig.colorbar(image, ax=ax, label="segment mean, in standard deviations from all customers")
    ax.set_title("Segment profiles: colour = mean vs all customers, number = segment median")
    return _save(fig, path)


def box_plots(stats: dict[str, dict[str, tuple[float, ...]]], path: Path, currency: str) -> Path:
    """stats[feature][segment] = (p5, p25, p50, p75, p95); whiskers at the 5th and 95th percentiles."""
    features = list(stats)
    columns = min(3, len(features))
    rows = -(-len(features) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 4 * rows), squeeze=False)
    for ax, feature in zip(axes.flat, features):
        segments = list(stats[feature])
        boxes = [{"label": s, "whislo": v[0], "q1": v[1], "med": v[2], "q3": v[3], "whishi": v[4], "fliers": []}
                 for s, v in stats[feature].items()]
        ax.bxp(boxes, showfliers=False, vert=False)
        ax.set_yticks(range(1, len(segments) + 1), segments, fontsize=8)
        values = [x for v in stats[feature].values() for x in v]
        low, high = min(values), max(values)
        if high > 50 * max(1.0, float(np.median(np.abs(values)))):  # heavy tail: log scale that allows 0 and below
            ax.set_xscale("symlog", linthresh=1.0)
            ax.set_xlim(low * 1.5 if low < 0 else 0, high * 1.5)
        ax.set_title(feature)
        ax.set_xlabel(_unit(feature, currency))
    for ax in list(axes.flat)[len(features):]:
        ax.axis("off")
    fig.suptitle("Feature distributions per segment (box: 25th-75th percentile, whiskers: 5th-95th)")
    return _save(fig, path)


def projection(bins: pd.DataFrame, centroids: pd.DataFrame, explained: tuple[float, float], path: Path) -> Path:
    """bins: segment_name, x, y, customers (binned counts); centroids: segment_name, x, y."""
    fig, ax = plt.subplots(figsize=(8, 6.5))
    names = list(centroids["segment_name"])
    scale = 120.0 / max(1, bins["customers"].max())
    for i, name in enumerate(names):
        cell = bins[bins["segment_name"] == name]
        ax.scatter(cell["x"], cell["y"], s=8 + cell["customers"] * scale, alpha=0.35, color=COLOURS(i % 10),
                   label=name, edgecolors="none")
    for i, row in centroids.reset_index(drop=True).iterrows():
        ax.scatter(row["x"], row["y"], marker="X", s=140, color=COLOURS(i % 10), edgecolors="black")
        ax.annotate(row["segment_name"], (row["x"], row["y"]), xytext=(6, 6), textcoords="offset points", fontsize=9)
    ax.set_title("Segments in two dimensions (principal components of the standardised features)")
    ax.set_xlabel(f"first principal component ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"second principal component ({explained[1]:.0%} of variance)")
    ax.legend(title="segment (marker size = customers in the area)", fontsize=8, loc="best")
    return _save(fig, path)


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
    return _save(fig, path)


def counts_bar(labels, values, path: Path, title: str, xlabel: str) -> Path:
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.5))
    ax.barh(list(labels), list(values), color=COLOURS(0))
    for y, value in enumerate(values):
        ax.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_xlim(0, max(values) * 1.15 if len(values) and max(values) > 0 else 1)
    return _save(fig, path)


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
    return _save(fig, path)


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
    return _save(fig, path)
