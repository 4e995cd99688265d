"""Segment names from profiles: unique, deterministic, closest to the catalogue's ideals."""

from customer_segmentation.naming import DIMENSIONS, CatalogueName, assign_names, catalogue, describe


def standing(recency, frequency, monetary, order_value=0.5, tenure=0.5):
    return dict(zip(DIMENSIONS, (recency, frequency, monetary, order_value, tenure)))


def test_profiles_get_the_expected_names():
    names = assign_names({
        0: standing(0.9, 0.9, 0.9, 0.6, 0.8), 1: standing(0.05, 0.1, 0.1, 0.4, 0.3),
        2: standing(0.92, 0.15, 0.3, 0.45, 0.05), 3: standing(0.15, 0.85, 0.85, 0.6, 0.75),
        4: standing(0.7, 0.75, 0.97, 0.97, 0.75),
    })
    assert {s: n.name for s, n in names.items()} == {
        0: "Champions", 1: "Lost", 2: "New Customers", 3: "Can't Lose Them", 4: "Big Spenders"}
    assert names[1].action == next(n.action for n in catalogue() if n.name == "Lost")


def test_names_are_unique_and_deterministic_even_for_similar_segments():
    similar = {i: standing(0.9, 0.9, 0.9 - i * 0.01) for i in range(6)}
    first = assign_names(similar)
    assert len({n.name for n in first.values()}) == 6
    assert assign_names(similar) == first


def test_more_segments_than_names_get_numbered():
    small = (CatalogueName("High", (1, 1, 1, 1, 1), "keep"), CatalogueName("Low", (0, 0, 0, 0, 0), "drop"))
    names = assign_names({i: standing(*(i / 4,) * 5) for i in range(5)}, small)
    assert sorted(n.name for n in names.values()) == ["High", "High 2", "High 3", "Low", "Low 2"]


def test_description_in_plain_words():
    text = describe(standing(0.9, 0.1, 0.5, 0.9), {"recency_days": 5, "frequency": 1, "monetary": 1234.5,
                                                     "avg_order_value": 987})
    assert text == ("Customers who bought recently (median 5 days ago), rarely order (median 1 order), "
                    "spend a moderate amount (median 1,234 net), with large baskets (median order 987).")
