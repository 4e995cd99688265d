"""The model search's and the champion's figures for MLflow and the report: elbow, metrics by k,
segment sizes, profile heatmap, box plots and the 2-D projection."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame

from ..core.charts import COLOURS, draw_as_ready, figure_text, plt, save, unit
from . import segment_statistics
from .naming import SegmentName

ALGORITHM_LABELS = {"kmeans": "KMeans", "bisecting_kmeans": "Bisecting KMeans", "gaussian_mixture": "Gaussian mixture"}


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
    return save(fig, path)


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
    return save(fig, path)


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
    return save(fig, path)


def profile_heatmap(z_scores: pd.DataFrame, medians: pd.DataFrame, path: Path, currency: str) -> Path:
    """Rows: segments; columns: features. Colour = z-score of the segment mean; text = segment median."""
    fig, ax = plt.subplots(figsize=(1.6 * len(z_scores.columns) + 3, 0.6 * len(z_scores) + 2))
    limit = max(1.0, float(np.nanmax(np.abs(z_scores.values))))
    image = ax.imshow(z_scores.values, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(z_scores.columns)),
                  [f"{c}\n({unit(c, currency)})" for c in z_scores.columns], rotation=0, fontsize=8)
    ax.set_yticks(range(len(z_scores.index)), z_scores.index)
    for i in range(len(z_scores.index)):
        for j in range(len(z_scores.columns)):
            ax.text(j, i, figure_text(z_scores.columns[j], medians.iloc[i, j]), ha="center", va="center",
                    fontsize=8, color="white" if abs(z_scores.iloc[i, j]) > 0.6 * limit else "black")
    fig.colorbar(image, ax=ax, label="segment mean, in standard deviations from all customers")
    ax.set_title("Segment profiles: colour = mean vs all customers, number = segment median")
    return save(fig, path)


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
        ax.set_xlabel(unit(feature, currency))
    for ax in list(axes.flat)[len(features):]:
        ax.axis("off")
    fig.suptitle("Feature distributions per segment (box: 25th-75th percentile, whiskers: 5th-95th)")
    return save(fig, path)


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
    return save(fig, path)




def draw_champion_figures(scored: DataFrame, prepared_scored: DataFrame, names: dict[int, SegmentName],
                          features: list[str], out_dir, seed: int, currency: str, title: str) -> list:
    """The champion's figures: sizes, profile heatmap, box plots and the 2-D projection.

    Their statistics are queried side by side while this thread draws the figures already possible.
    """
    def heatmap(statistics) -> Path:
        means, medians, overall = statistics
        z_scores = pd.DataFrame({f: (means[f] - overall[f"mean_{f}"][0]) / (overall[f"std_{f}"][0] or 1.0)
                                 for f in features})
        z_scores.index = medians.index = [names[s].name for s in means.index]
        return profile_heatmap(z_scores, medians, out_dir / "segment_profile_heatmap.png", currency)

    return draw_as_ready([
        (partial(segment_statistics.segment_sizes, scored, names),
         lambda sizes: segment_sizes(sizes, out_dir / "segment_sizes.png", title)),
        (partial(segment_statistics.feature_statistics, scored, features), heatmap),
        (partial(segment_statistics.box_statistics, scored, names),
         lambda boxes: box_plots(boxes, out_dir / "segment_box_plots.png", currency)),
        (partial(segment_statistics.projection_data, prepared_scored, seed, names),
         lambda data: projection(*data, out_dir / "segment_projection.png")),
    ])


def _actual_and_predicted(ax, x, rows: pd.DataFrame, labels: tuple[str, str, str], markers=(None, None)) -> None:
    """The actual and the BG/NBD-predicted series of a holdout chart on `ax`, with its labels."""
    ax.plot(x, rows["actual"], marker=markers[0], color=COLOURS(0), label="actual")
    ax.plot(x, rows["predicted"], marker=markers[1], linestyle="--", color=COLOURS(1), label="predicted (BG/NBD)")
    xlabel, ylabel, title = labels
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend()
    ax.grid(alpha=0.3)


def holdout_by_frequency(validation: pd.DataFrame, path: Path) -> Path:
    """Mean holdout purchases per customer, actual and predicted, by calibration repeat purchases."""
    rows = validation[validation["chart"] == "by_calibration_frequency"].sort_values("position")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    _actual_and_predicted(ax, rows["label"], rows, (
        "repeat purchases in the calibration period", "purchases per customer in the holdout window",
        "Holdout check: purchases in the holdout window by earlier frequency"), markers=("o", "s"))
    return save(fig, path)


def cumulative_purchases(validation: pd.DataFrame, path: Path) -> Path:
    """Cumulative repeat purchases week by week, actual and predicted; the holdout window shaded."""
    rows = validation[validation["chart"] == "cumulative_by_week"].sort_values("position")
    weeks = pd.to_datetime(rows["label"])
    fig, ax = plt.subplots(figsize=(9, 4.5))
    holdout = weeks[rows["in_holdout"].astype(bool).to_numpy()]
    if len(holdout):
        ax.axvspan(holdout.min(), holdout.max(), color="grey", alpha=0.15, label="holdout window")
    _actual_and_predicted(ax, weeks, rows, (
        "week", "repeat purchases so far", "Holdout check: cumulative repeat purchases of the calibration customers"))
    return save(fig, path)
