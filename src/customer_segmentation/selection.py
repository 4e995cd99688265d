"""The champion rule: stated in one place, applied to a table of candidate metrics."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    algorithm: str
    k: int
    metrics: dict[str, float]
    skipped_reason: str | None = None

    @property
    def label(self) -> str:
        return f"{self.algorithm} k={self.k}"


@dataclass(frozen=True)
class SelectionRule:
    min_segment_share: float
    tolerance: float

    def describe(self) -> str:
        return (f"Among candidates whose smallest segment holds at least {self.min_segment_share:.1%} of customers, "
                f"take the highest silhouette_sq_euclidean; candidates within {self.tolerance:g} of it count as "
                f"tied and the lowest davies_bouldin among them wins (equal to 9 decimals: fewer segments, then "
                f"algorithm order).")

    def choose(self, candidates: list[Candidate], algorithm_order: tuple[str, ...]) -> tuple[int | None, str]:
        """Index of the champion in `candidates` and the reason, or None and why nothing qualifies."""
        valid = [i for i, c in enumerate(candidates)
                 if c.skipped_reason is None and "silhouette_sq_euclidean" in c.metrics]
        if not valid:
            reasons = "; ".join(f"{c.label}: {c.skipped_reason}" for c in candidates if c.skipped_reason)
            return None, f"no candidate could be trained ({reasons or 'no candidates'})"
        eligible = [i for i in valid if candidates[i].metrics["smallest_segment_share"] >= self.min_segment_share]
        note = ""
        if not eligible:
            eligible = valid
            note = (f" No candidate's smallest segment reached {self.min_segment_share:.1%}, "
                    "so the rule was applied to all trained candidates.")
        best = max(eligible, key=lambda i: candidates[i].metrics["silhouette_sq_euclidean"])
        best_silhouette = candidates[best].metrics["silhouette_sq_euclidean"]
        tied = [i for i in eligible if candidates[i].metrics["silhouette_sq_euclidean"] >= best_silhouette - self.tolerance]
        # Two algorithms that find the same segments get the same index but for its last bits, which
        # vary from run to run: rounded, the tie goes to the stated order instead of to that noise.
        winner = min(tied, key=lambda i: (round(candidates[i].metrics["davies_bouldin"], 9), candidates[i].k,
                                          algorithm_order.index(candidates[i].algorithm)))
        chosen = candidates[winner]
        reason = (f"{chosen.label}: silhouette_sq_euclidean {chosen.metrics['silhouette_sq_euclidean']:.4f} "
                  f"(best {best_silhouette:.4f} by {candidates[best].label}); lowest davies_bouldin "
                  f"{chosen.metrics['davies_bouldin']:.4f} among {len(tied)} candidate(s) within {self.tolerance:g}; "
                  f"smallest segment {chosen.metrics['smallest_segment_share']:.1%} of customers.{note}")
        return winner, reason
