"""The champion rule on hand-made metric tables."""

from customer_segmentation.selection import Candidate, SelectionRule

ORDER = ("kmeans", "bisecting_kmeans", "gaussian_mixture")
RULE = SelectionRule(min_segment_share=0.05, tolerance=0.02)


def c(algorithm, k, silhouette, db, smallest, skipped=None):
    values = {} if skipped else {"silhouette_sq_euclidean": silhouette, "davies_bouldin": db,
                                 "smallest_segment_share": smallest}
    return Candidate(algorithm, k, values, skipped)


def test_best_silhouette_wins_when_clear():
    candidates = [c("kmeans", 2, 0.60, 0.9, 0.4), c("kmeans", 3, 0.70, 0.8, 0.2), c("kmeans", 4, 0.65, 0.5, 0.1)]
    index, reason = RULE.choose(candidates, ORDER)
    assert index == 1 and reason.startswith("kmeans k=3")


def test_ties_within_tolerance_go_to_the_lowest_davies_bouldin():
    candidates = [c("kmeans", 3, 0.700, 0.80, 0.2), c("gaussian_mixture", 5, 0.690, 0.45, 0.1),
                  c("bisecting_kmeans", 4, 0.679, 0.30, 0.1)]
    index, reason = RULE.choose(candidates, ORDER)
    assert index == 1
    assert "among 2 candidate(s)" in reason


def test_candidates_with_a_tiny_segment_are_not_eligible():
    candidates = [c("kmeans", 8, 0.90, 0.2, 0.01), c("kmeans", 4, 0.70, 0.6, 0.08)]
    assert RULE.choose(candidates, ORDER)[0] == 1


def test_equal_scores_prefer_fewer_segments_then_algorithm_order():
    candidates = [c("gaussian_mixture", 4, 0.7, 0.5, 0.1), c("kmeans", 5, 0.7, 0.5, 0.1), c("kmeans", 4, 0.7, 0.5, 0.1)]
    assert RULE.choose(candidates, ORDER)[0] == 2


def test_the_same_segments_found_by_two_algorithms_go_to_the_algorithm_order_not_to_last_bits():
    noisy = 0.4 + 2e-16
    candidates = [c("bisecting_kmeans", 5, 0.85, 0.4, 0.1), c("kmeans", 5, 0.85, noisy, 0.1)]
    assert RULE.choose(candidates, ORDER)[0] == 1
    assert RULE.choose(list(reversed(candidates)), ORDER)[0] == 0


def test_skipped_candidates_are_ignored_and_nothing_trained_says_why():
    candidates = [c("kmeans", 2, 0, 0, 0, skipped="only 1 customers, fewer than k=2"), c("kmeans", 3, 0.5, 0.5, 0.5)]
    assert RULE.choose(candidates, ORDER)[0] == 1
    index, reason = RULE.choose(candidates[:1], ORDER)
    assert index is None and "kmeans k=2: only 1 customers, fewer than k=2" in reason


def test_when_no_candidate_meets_the_share_the_rule_says_so():
    candidates = [c("kmeans", 2, 0.5, 0.5, 0.01), c("kmeans", 3, 0.6, 0.5, 0.02)]
    index, reason = RULE.choose(candidates, ORDER)
    assert index == 1 and "applied to all trained candidates" in reason


def test_rule_is_stated():
    assert "5.0% of customers" in RULE.describe() and "0.02" in RULE.describe()
