"""The champion rule on hand-made metric tables."""

from customer_segmentation.models.selection import Candidate, SelectionRule

ORDER = ("kmeans", "bisecting_kmeans", "gaussian_mixture")
RULE = SelectionRule(min_segment_share=0.05, min_segment_revenue_share=0.1, tolerance=0.02)


def c(algorithm, k, silhouette, db, smallest, skipped=None, smallest_revenue=None):
    """A candidate whose segments are one of `smallest` share (holding `smallest_revenue` of the
    revenue, by default as much as its share of customers) and the rest split evenly."""
    if skipped:
        return Candidate(algorithm, k, {}, skipped)
    revenue = smallest if smallest_revenue is None else smallest_revenue
    shares = tuple([(1 - smallest) / (k - 1)] * (k - 1) + [smallest])
    revenues = tuple([(1 - revenue) / (k - 1)] * (k - 1) + [revenue])
    values = {"silhouette_sq_euclidean": silhouette, "davies_bouldin": db, "smallest_segment_share": smallest,
              "smallest_segment_revenue_share": revenue}
    return Candidate(algorithm, k, values, None, shares, revenues)


def test_best_silhouette_wins_when_clear():
    candidates = [c("kmeans", 2, 0.60, 0.9, 0.4), c("kmeans", 3, 0.70, 0.8, 0.2), c("kmeans", 4, 0.65, 0.5, 0.1)]
    index, reason, fallback = RULE.choose(candidates, ORDER)
    assert index == 1 and reason.startswith("kmeans k=3") and not fallback
    assert "3 of 3 trained candidates have every segment actionable" in reason


def test_ties_within_tolerance_go_to_the_lowest_davies_bouldin():
    candidates = [c("kmeans", 3, 0.700, 0.80, 0.2), c("gaussian_mixture", 5, 0.690, 0.45, 0.1),
                  c("bisecting_kmeans", 4, 0.679, 0.30, 0.1)]
    index, reason, _ = RULE.choose(candidates, ORDER)
    assert index == 1
    assert "among 2 candidate(s)" in reason


def test_a_segment_small_in_customers_and_in_revenue_is_not_actionable():
    candidates = [c("kmeans", 8, 0.90, 0.2, 0.01), c("kmeans", 4, 0.70, 0.6, 0.08)]
    assert RULE.unactionable_segments(candidates[0]) == 1
    assert RULE.choose(candidates, ORDER)[0] == 1


def test_a_small_segment_holding_much_revenue_is_actionable():
    # 1% of the customers with 30% of the revenue: wholesale buyers, the segment a marketer most wants.
    candidates = [c("kmeans", 5, 0.90, 0.2, 0.01, smallest_revenue=0.30), c("kmeans", 4, 0.70, 0.6, 0.08)]
    assert RULE.unactionable_segments(candidates[0]) == 0
    index, reason, fallback = RULE.choose(candidates, ORDER)
    assert index == 0 and not fallback
    assert "smallest segment 1.0% of modelled customers with 30.0% of net revenue" in reason


def test_equal_scores_prefer_fewer_segments_then_algorithm_order():
    candidates = [c("gaussian_mixture", 4, 0.7, 0.5, 0.1), c("kmeans", 5, 0.7, 0.5, 0.1), c("kmeans", 4, 0.7, 0.5, 0.1)]
    assert RULE.choose(candidates, ORDER)[0] == 2


def test_the_same_segments_found_by_two_algorithms_go_to_the_algorithm_order_not_to_last_bits():
    noisy = 0.4 + 2e-16
    candidates = [c("bisecting_kmeans", 5, 0.85, 0.4, 0.1), c("kmeans", 5, 0.85, noisy, 0.1)]
    assert RULE.choose(candidates, ORDER)[0] == 1
    assert RULE.choose(list(reversed(candidates)), ORDER)[0] == 0


def test_skipped_candidates_are_ignored_and_nothing_trained_says_why():
    skipped = "only 1 customers with net purchases: k=2 needs more customers than segments"
    candidates = [c("kmeans", 2, 0, 0, 0, skipped=skipped), c("kmeans", 3, 0.5, 0.5, 0.3)]
    assert RULE.choose(candidates, ORDER)[0] == 1
    index, reason, _ = RULE.choose(candidates[:1], ORDER)
    assert index is None and f"kmeans k=2: {skipped}" in reason


def test_when_no_candidate_qualifies_the_fallback_is_stated_and_reported():
    candidates = [c("kmeans", 2, 0.5, 0.5, 0.01), c("kmeans", 3, 0.6, 0.5, 0.02),
                  Candidate("kmeans", 4, {"silhouette_sq_euclidean": 0.9, "davies_bouldin": 0.1,
                                          "smallest_segment_share": 0.01, "smallest_segment_revenue_share": 0.01},
                            None, (0.5, 0.47, 0.02, 0.01), (0.5, 0.47, 0.02, 0.01))]
    index, reason, fallback = RULE.choose(candidates, ORDER)
    # The k = 4 candidate has the best silhouette but two segments too small; the others one each.
    assert fallback and index == 1
    assert "Fallback: none of the 3 trained candidates has every segment actionable" in reason
    assert "fewest segments below both minimums (1)" in reason


def test_rule_is_stated():
    text = RULE.describe()
    assert "5.0% of the customers or at least 10.0% of their net revenue" in text and "0.02" in text
    assert "If no candidate qualifies" in text and "fallback" in text
