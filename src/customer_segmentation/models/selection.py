"""The champion rule: stated in one place, applied to a table of candidate metrics."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Candidate:
    algorithm: str
    k: int
    metrics: dict[str, float]
    skipped_reason: str | None = None
    # Per segment, largest first: share of the modelled customers and of their net revenue.
    segment_shares: tuple[float, ...] = field(default=(), compare=False)
    segment_revenue_shares: tuple[float, ...] = field(default=(), compare=False)

    @property
    def label(self) -> str:
        return f"{self.algorithm} k={self.k}"

    @property
    def trained(self) -> bool:
        return self.skipped_reason is None and "silhouette_sq_euclidean" in self.metrics


@dataclass(frozen=True)
class SelectionRule:
    """A segment is actionable when it is large enough in customers or in net revenue: a small group
    of wholesale buyers holding a large share of revenue is as actionable as a segment can be."""

    min_segment_share: float
    min_segment_revenue_share: float
    tolerance: float

    def unactionable_segments(self, candidate: Candidate) -> int:
        """Segments neither large enough in customers nor in net revenue."""
        return sum(share < self.min_segment_share and revenue < self.min_segment_revenue_share
                   for share, revenue in zip(candidate.segment_shares, candidate.segment_revenue_shares))

    def describe(self) -> str:
        actionable = (f"at least {self.min_segment_share:.1%} of the customers or at least "
                      f"{self.min_segment_revenue_share:.1%} of their net revenue")
        ranking = (f"the highest silhouette_sq_euclidean; candidates within {self.tolerance:g} of it count as tied "
                   f"and the lowest davies_bouldin among them wins (equal to 9 decimals: fewer segments, then "
                   f"algorithm order)")
        return (f"A segment is actionable if it holds {actionable}. Among candidates whose every segment is "
                f"actionable, take {ranking}. If no candidate qualifies, the champion is chosen among the "
                f"candidates with the fewest segments that are not actionable, by the same ranking, and the "
                f"choice is reported as a fallback.")

    def choose(self, candidates: list[Candidate], algorithm_order: tuple[str, ...]) -> tuple[int | None, str, bool]:
        """Index of the champion in `candidates`, the reason, and whether the fallback decided;
        None and why when nothing could be trained."""
        valid = [i for i, c in enumerate(candidates) if c.trained]
        if not valid:
            reasons = "; ".join(f"{c.label}: {c.skipped_reason}" for c in candidates if c.skipped_reason)
            return None, f"no candidate could be trained ({reasons or 'no candidates'})", False
        unactionable = {i: self.unactionable_segments(candidates[i]) for i in valid}
        eligible = [i for i in valid if unactionable[i] == 0]
        fallback = not eligible
        if fallback:
            fewest = min(unactionable.values())
            eligible = [i for i in valid if unactionable[i] == fewest]
        best = max(eligible, key=lambda i: candidates[i].metrics["silhouette_sq_euclidean"])
        best_silhouette = candidates[best].metrics["silhouette_sq_euclidean"]
        tied = [i for i in eligible
                if candidates[i].metrics["silhouette_sq_euclidean"] >= best_silhouette - self.tolerance]
        # Two algorithms that find the same segments get the same index but for its last bits, which
        # vary from run to run: rounded, the tie goes to the stated order instead of to that noise.
        winner = min(tied, key=lambda i: (round(candidates[i].metrics["davies_bouldin"], 9), candidates[i].k,
                                          algorithm_order.index(candidates[i].algorithm)))
        chosen = candidates[winner]
        reason = (f"{chosen.label}: silhouette_sq_euclidean {chosen.metrics['silhouette_sq_euclidean']:.4f} "
                  f"(best {best_silhouette:.4f} by {candidates[best].label}); lowest davies_bouldin "
                  f"{chosen.metrics['davies_bouldin']:.4f} among {len(tied)} candidate(s) within {self.tolerance:g}; "
                  f"smallest segment {chosen.metrics['smallest_segment_share']:.1%} of modelled customers with "
                  f"{chosen.metrics['smallest_segment_revenue_share']:.1%} of net revenue.")
        if fallback:
            reason += (f" Fallback: none of the {len(valid)} trained candidates has every segment actionable; "
                       f"chosen among the {len(eligible)} with the fewest segments below both minimums "
                       f"({unactionable[winner]}).")
        else:
            reason += f" {len(eligible)} of {len(valid)} trained candidates have every segment actionable."
        return winner, reason, fallback
