"""Value tiers: recency, frequency and net revenue each clustered on its own (1-D k-means, k = 4),
the clusters scored 1-4 so that higher is better, summed, and mapped to Low, Mid or High.

In one dimension k-means has an exact solution: the clusters are intervals of the sorted values,
and the best intervals are found by dynamic programming over the distinct values. The values are
gathered once (one number per customer and dimension) and solved on the driver, which gives the
optimal clusters, the same every run, with no seed, in one Spark job (an iterative MLlib fit takes
about fifty per dimension; BENCHMARKS.md).
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from .enrichment import signed_log1p

TIER_CLUSTERS = 4


def tier_of_clusters(centres: list[float], higher_is_better: bool) -> dict[int, int]:
    """Cluster index -> score 1..4, ordered by centre so that a higher score is a better customer.

    With fewer than four clusters (few distinct values) the scores still span 1..4.
    """
    order = sorted(range(len(centres)), key=lambda i: centres[i], reverse=not higher_is_better)
    if len(order) == 1:
        return {order[0]: 2}
    return {cluster: 1 + round(rank * (TIER_CLUSTERS - 1) / (len(order) - 1)) for rank, cluster in enumerate(order)}


def optimal_intervals(values: np.ndarray, k: int) -> tuple[list[float], list[float]]:
    """Exact 1-D k-means: the k (fewer with fewer distinct values) intervals of `values` with the
    least within-cluster sum of squares, in ascending order, as (thresholds between neighbouring
    intervals, the intervals' means). A value belongs to the first interval whose threshold it is
    below; the thresholds lie halfway between one interval's largest value and the next's smallest.

    Dynamic programming over the n distinct values: the cost of the best m intervals ending at each
    value, from the best m - 1. Where the last interval starts never moves left as its end moves
    right, so each layer is solved by divide and conquer in O(n log n), a level of it at a time.
    """
    x, weight = np.unique(np.asarray(values, dtype=float), return_counts=True)
    n, k = len(x), min(k, len(x))
    if not n:  # nothing to cluster: one empty interval
        return [], [float("nan")]
    centred = x - np.average(x, weights=weight)  # smaller sums of squares: less cancellation
    count, total, squares = (np.concatenate([[0.0], np.cumsum(s)]) for s in (weight, weight * centred,
                                                                           weight * centred * centred))

    def cost(first: np.ndarray, last: np.ndarray) -> np.ndarray:
        """Sum of squares about their mean of the values x[first..last]."""
        w, s = count[last + 1] - count[first], total[last + 1] - total[first]
        return np.maximum(squares[last + 1] - squares[first] - s * s / w, 0.0)

    best = cost(np.zeros(n, dtype=int), np.arange(n))  # one interval over x[0..j]
    starts = []  # starts[m - 1][j]: where the last of the best m + 1 intervals over x[0..j] starts
    for m in range(1, k):
        layer, start = np.full(n, np.inf), np.zeros(n, dtype=int)
        # Pending ranges of ends [lo, hi] whose last interval starts within [first, last].
        lo, hi, first, last = (np.array([v]) for v in (m, n - 1, m, n - 1))
        while len(lo):
            end = (lo + hi) // 2
            sizes = np.minimum(end, last) - first + 1
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            range_of = np.repeat(np.arange(len(end)), sizes)  # each candidate start's range
            candidate = first[range_of] + np.arange(sizes.sum()) - offsets[range_of]
            costs = best[candidate - 1] + cost(candidate, end[range_of])
            lowest = np.minimum.reduceat(costs, offsets)
            hits = np.flatnonzero(costs == lowest[range_of])  # the first hit of each range: its leftmost start
            chosen = candidate[hits[np.searchsorted(range_of[hits], np.arange(len(end)))]]
            layer[end], start[end] = lowest, chosen
            # The ends left of each midpoint start no later than its chosen start, those right of it no earlier.
            left, right = end > lo, end < hi
            lo, hi = np.concatenate([lo[left], end[right] + 1]), np.concatenate([end[left] - 1, hi[right]])
            first, last = np.concatenate([first[left], chosen[right]]), np.concatenate([chosen[left], last[right]])
        starts.append(start)
        best = layer
    bounds, end = [], n - 1
    for m in range(k - 1, 0, -1):
        end = starts[m - 1][end] - 1
        bounds.append(end)
    edges = [0, *[b + 1 for b in reversed(bounds)], n]
    means = [float(np.average(x[a:b], weights=weight[a:b])) for a, b in zip(edges, edges[1:])]
    # Halfway, or the next double above the lower value when the two are neighbouring doubles.
    thresholds = [float(max((x[b - 1] + x[b]) / 2, np.nextafter(x[b - 1], np.inf))) for b in edges[1:-1]]
    return thresholds, means


def tier_column(value: Column, thresholds: list[float], tiers: dict[int, int]) -> Column:
    """The tier of the interval `value` falls in (intervals as `optimal_intervals` returns them)."""
    tier = F.lit(tiers[len(thresholds)])
    for cluster in reversed(range(len(thresholds))):
        tier = F.when(value < F.lit(thresholds[cluster]), F.lit(tiers[cluster])).otherwise(tier)
    return tier


def value_tiers(features: DataFrame) -> DataFrame:
    """Per-dimension value tiers of every customer (skewed frequency and revenue on a log scale)."""
    dimensions = {  # tier column: (value clustered, whether a higher value is better)
        "recency_tier": (F.col("recency_days").cast("double"), False),
        "frequency_tier": (F.log1p("frequency"), True),
        "monetary_tier": (signed_log1p(F.col("monetary")), True)}
    gathered = features.select(*[value.alias(name) for name, (value, _) in dimensions.items()]).toArrow()
    tiers = {}
    for name, (value, higher_is_better) in dimensions.items():
        thresholds, means = optimal_intervals(gathered.column(name).to_numpy(), TIER_CLUSTERS)
        tiers[name] = tier_column(value, thresholds, tier_of_clusters(means, higher_is_better))
    score = F.col("recency_tier") + F.col("frequency_tier") + F.col("monetary_tier")
    return (features.select("customer_id", "recency_days", "frequency", "monetary", "as_of_date",
                            *[tier.alias(name) for name, tier in tiers.items()])
            .withColumn("value_score", score)
            .withColumn("value_tier", F.when(score >= 9, "High").when(score >= 6, "Mid").otherwise("Low")))
