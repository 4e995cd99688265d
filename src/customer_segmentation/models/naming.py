"""Segment names chosen from each segment's profile, from an editable catalogue.

A segment's standing on a dimension is the mean percentile of its customers among all segmented
customers (recency reversed: 1 = bought most recently). Standings are relative, so a name must
also respect absolute time: each segment has an activity (active, lapsing, lapsed) from how long
its customers have been quiet against their own purchase rhythm, and is named only from the
catalogue entries of that activity. Within an activity one global one-to-one assignment
(Hungarian method) gives every segment the closest name. When there are more segments than
names, the extra segments get the name of their closest entry with what sets them apart from the
segment holding the plain name; that holder is always a closer match than any of them (an
optimal assignment could otherwise swap them).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from scipy.optimize import linear_sum_assignment

from ..core.console import counted, whole
from ..core.rules import DIMENSIONS, SegmentCatalogue, segment_catalogue
from ..gold.rfm import percentile

# dimension -> (feature column, higher value means higher standing)
DIMENSION_COLUMNS = {
    "recency": ("recency_days", False),
    "frequency": ("frequency", True),
    "monetary": ("monetary", True),
    "order_value": ("avg_order_value", True),
    "tenure": ("tenure_days", True),
}
# How an extra segment differs from the plain name's holder: (higher standing, lower standing).
QUALIFIERS = {
    "recency": ("more recent", "less recent"),
    "frequency": ("more frequent", "less frequent"),
    "monetary": ("higher spend", "lower spend"),
    "order_value": ("larger baskets", "smaller baskets"),
    "tenure": ("longer-standing", "newer"),
}


@dataclass(frozen=True)
class SegmentProfile:
    """What naming knows of a segment: its standings, its activity, and its median days since the
    last purchase in typical gaps between purchases (both None when the data has no repeat
    purchases to measure a rhythm by)."""

    standing: dict[str, float]
    activity: str | None = None
    recency_in_typical_gaps: float | None = None


@dataclass(frozen=True)
class SegmentName:
    """The name a segment got, what marketing should do with it, and the profile behind the name."""

    name: str
    action: str
    profile: SegmentProfile = SegmentProfile({})


def customer_standings(features: DataFrame) -> DataFrame:
    """customer_id, one standing column (0-1) per dimension, `inactivity`: days since the last
    purchase over the customer's usual days between purchases (the typical gap, the median of
    repeat customers', for those who bought on one day only), and `recency_in_typical_gaps`: those
    days over the typical gap, one yardstick for everyone (both null when nobody bought twice)."""
    repeat = F.col("last_purchase_date") > F.col("first_purchase_date")
    typical_gap = features.where(repeat).agg(F.percentile("avg_days_between_orders", 0.5)).first()[0]
    gap = F.when(repeat, F.col("avg_days_between_orders")).otherwise(F.lit(typical_gap))
    return features.select("customer_id", *[
        percentile(F.col(column) if higher_is_better else -F.col(column)).alias(f"standing_{dimension}")
        for dimension, (column, higher_is_better) in DIMENSION_COLUMNS.items()],
        (F.col("recency_days") / gap).alias("inactivity"),
        (F.col("recency_days") / F.lit(typical_gap)).alias("recency_in_typical_gaps"))


def segment_profiles(segments: DataFrame, standings: DataFrame,
                     catalogue: SegmentCatalogue | None = None) -> dict[int, SegmentProfile]:
    """Mean standing and activity per segment; `segments` has customer_id and segment_id."""
    catalogue = catalogue or segment_catalogue()
    rows = (segments.join(standings, "customer_id").groupBy("segment_id")
            .agg(*[F.avg(f"standing_{d}").alias(d) for d in DIMENSIONS],
                 F.percentile("inactivity", 0.5).alias("inactivity"),
                 F.percentile("recency_in_typical_gaps", 0.5).alias("recency_in_typical_gaps")).collect())
    return {row["segment_id"]: SegmentProfile({d: float(row[d]) for d in DIMENSIONS},
                                              catalogue.activity.of(row["inactivity"]), row["recency_in_typical_gaps"])
            for row in rows}


def assign_names(profiles: dict[int, SegmentProfile],
                 catalogue: SegmentCatalogue | None = None) -> dict[int, SegmentName]:
    """A distinct name per segment: the closest catalogue entry of its activity, one-to-one."""
    catalogue = catalogue or segment_catalogue()
    assigned: dict[int, SegmentName] = {}
    extras = []  # (closeness, segment, entry, holder of the entry's plain name)
    for activity in dict.fromkeys(p.activity for _, p in sorted(profiles.items())):
        segments = sorted(s for s, p in profiles.items() if p.activity == activity)
        entries = [n for n in catalogue.names if activity is None or n.activity == activity]
        points = np.array([[profiles[s].standing[d] for d in DIMENSIONS] for s in segments])
        cost = ((points[:, None, :] - np.array([n.standing for n in entries])[None, :, :]) ** 2).sum(axis=2)
        rows, cols = linear_sum_assignment(cost)
        holder = {}
        for row, col in zip(rows, cols):
            holder[col] = segments[row]
            assigned[segments[row]] = SegmentName(entries[col].name, entries[col].action, profiles[segments[row]])
        for row in sorted(set(range(len(segments))) - set(rows)):
            col = int(np.argmin(cost[row]))
            extras.append((float(cost[row, col]), segments[row], entries[col], holder[col]))
    taken = {n.name for n in assigned.values()}
    for _, segment, entry, holder in sorted(extras, key=lambda e: (e[0], e[1])):
        name = distinct_name(entry.name, profiles[segment].standing, profiles[holder].standing, taken)
        taken.add(name)
        assigned[segment] = SegmentName(name, entry.action, profiles[segment])
    return assigned


def distinct_name(base: str, standing: dict[str, float], holder: dict[str, float], taken: set[str]) -> str:
    """`base` with the one, then two, then three dimensions on which the segment differs most from
    the holder of the plain name, e.g. 'Champions (higher spend)'; numbered as a last resort."""
    differences = sorted(DIMENSIONS, key=lambda d: (-abs(standing[d] - holder[d]), DIMENSIONS.index(d)))
    words = [QUALIFIERS[d][0 if standing[d] >= holder[d] else 1] for d in differences]
    for size in (1, 2, 3):
        for combination in itertools.combinations(words[:size + 1], size):
            name = f"{base} ({', '.join(combination)})"
            if name not in taken:
                return name
    number = 2
    while f"{base} ({words[0]}) {number}" in taken:
        number += 1
    return f"{base} ({words[0]}) {number}"


def _level(standing: float, low: str, mid: str, high: str) -> str:
    return low if standing < 0.35 else high if standing > 0.65 else mid


def _recency_words(profile: SegmentProfile) -> str:
    # Absolute first: a lapsed segment has not bought for a long time even if others are gone longer.
    if profile.activity == "lapsed":
        return "have not bought for a long time"
    if profile.activity == "lapsing":
        return "have gone quiet"
    if profile.activity == "active":
        # One yardstick for every segment, so the words follow the days beside them (a standing
        # called a segment's 31 days "a while ago" and another's 24 days "recently").
        return "bought recently" if profile.recency_in_typical_gaps <= 1 else "bought a while ago"
    return _level(profile.standing["recency"], "have not bought for a long time", "bought a while ago",
                  "bought recently")


def describe(profile: SegmentProfile, medians: dict[str, float], *, currency: str) -> str:
    """Plain words for a segment card, from its profile and its customers' medians."""
    standing = profile.standing
    parts = [
        _recency_words(profile) + f" (median {whole(medians['recency_days'])} days ago)",
        _level(standing["frequency"], "rarely order", "order now and then", "order often")
        + f" (median {counted(medians['frequency'], 'order')})",
        _level(standing["monetary"], "spend little", "spend a moderate amount", "spend the most")
        + f" (median {whole(medians['monetary'])} {currency} net)",
        _level(standing["order_value"], "with small baskets", "with average baskets", "with large baskets")
        + f" (median order {whole(medians['avg_order_value'])} {currency})",
    ]
    return "Customers who " + ", ".join(parts[:-1]) + ", " + parts[-1] + "."
