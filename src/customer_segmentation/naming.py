"""Segment names chosen from each segment's profile, from an editable catalogue.

A segment's standing on a dimension is the mean percentile of its customers among all
customers (recency reversed: 1 = bought most recently). Each segment gets the catalogue name
whose ideal standing is closest, in a one-to-one assignment (Hungarian method), so names are
unique and the same profile always gets the same name.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import yaml
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from scipy.optimize import linear_sum_assignment

from .features import percentile
from .rules import CONFIG_DIR

# dimension -> (feature column, higher value means higher standing)
DIMENSIONS = {
    "recency": ("recency_days", False),
    "frequency": ("frequency", True),
    "monetary": ("monetary", True),
    "order_value": ("avg_order_value", True),
    "tenure": ("tenure_days", True),
}


@dataclass(frozen=True)
class CatalogueName:
    name: str
    standing: tuple[float, ...]   # in DIMENSIONS order
    action: str


@dataclass(frozen=True)
class SegmentName:
    name: str
    action: str
    standing: dict[str, float]


@cache
def catalogue() -> tuple[CatalogueName, ...]:
    doc = yaml.safe_load((CONFIG_DIR / "segment_names.yaml").read_text(encoding="utf-8"))
    return tuple(CatalogueName(entry["name"], tuple(float(entry["standing"][d]) for d in DIMENSIONS),
                               entry["action"]) for entry in doc["names"])


def customer_standings(features: DataFrame) -> DataFrame:
    """customer_id and one standing column (0-1) per dimension."""
    return features.select("customer_id", *[
        percentile(F.col(column) if higher_is_better else -F.col(column)).alias(f"standing_{dimension}")
        for dimension, (column, higher_is_better) in DIMENSIONS.items()])


def segment_standings(segments: DataFrame, standings: DataFrame) -> dict[int, dict[str, float]]:
    """Mean standing per segment; `segments` has customer_id and segment_id."""
    rows = (segments.join(standings, "customer_id").groupBy("segment_id")
            .agg(*[F.avg(f"standing_{d}").alias(d) for d in DIMENSIONS]).collect())
    return {row["segment_id"]: {d: float(row[d]) for d in DIMENSIONS} for row in rows}


def assign_names(standings: dict[int, dict[str, float]],
                 names: tuple[CatalogueName, ...] | None = None) -> dict[int, SegmentName]:
    """One unique catalogue name per segment, closest ideal standing first."""
    names = names or catalogue()
    ideals = np.array([n.standing for n in names])
    remaining = sorted(standings)
    assigned: dict[int, SegmentName] = {}
    round_number = 1
    while remaining:  # more segments than names: another round, names get a number
        chunk = remaining[:len(names)]
        profiles = np.array([[standings[s][d] for d in DIMENSIONS] for s in chunk])
        cost = ((profiles[:, None, :] - ideals[None, :, :]) ** 2).sum(axis=2)
        rows, cols = linear_sum_assignment(cost)
        for row, col in zip(rows, cols):
            suffix = "" if round_number == 1 else f" {round_number}"
            assigned[chunk[row]] = SegmentName(names[col].name + suffix, names[col].action, standings[chunk[row]])
        remaining = remaining[len(names):]
        round_number += 1
    return assigned


def _level(standing: float, low: str, mid: str, high: str) -> str:
    return low if standing < 0.35 else high if standing > 0.65 else mid


def describe(standing: dict[str, float], medians: dict[str, float]) -> str:
    """Plain words for a segment card, from its standing and its customers' medians."""
    parts = [
        _level(standing["recency"], "have not bought for a long time", "bought a while ago", "bought recently")
        + f" (median {medians['recency_days']:.0f} days ago)",
        _level(standing["frequency"], "rarely order", "order now and then", "order often")
        + f" (median {medians['frequency']:.0f} order{'' if round(medians['frequency']) == 1 else 's'})",
        _level(standing["monetary"], "spend little", "spend a moderate amount", "spend the most")
        + f" (median {medians['monetary']:,.0f} net)",
        _level(standing["order_value"], "with small baskets", "with average baskets", "with large baskets")
        + f" (median order {medians['avg_order_value']:,.0f})",
    ]
    return "Customers who " + ", ".join(parts[:-1]) + ", " + parts[-1] + "."
