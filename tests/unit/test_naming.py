"""Segment names from profiles: unique, deterministic, closest to the catalogue's ideals, and true to
how long the customers have been gone."""

import datetime as dt
import random
import shutil

import pytest

from customer_segmentation.core.rules import (
    CONFIG_DIR,
    RulesError,
    parse_cleaning_rules,
    parse_segment_catalogue,
    rfm_rules,
    segment_catalogue,
)
from customer_segmentation.models.naming import (
    DIMENSIONS,
    SegmentProfile,
    assign_names,
    customer_standings,
    describe,
    segment_profiles,
)


def profile(recency, frequency, monetary, order_value=0.5, tenure=0.5, activity="active", recency_in_gaps=0.5):
    return SegmentProfile(dict(zip(DIMENSIONS, (recency, frequency, monetary, order_value, tenure))), activity,
                          None if activity is None else recency_in_gaps)


def test_profiles_get_the_expected_names():
    names = assign_names({
        0: profile(0.9, 0.9, 0.9, 0.6, 0.8), 1: profile(0.05, 0.1, 0.1, 0.4, 0.3, "lapsed"),
        2: profile(0.92, 0.15, 0.3, 0.45, 0.05), 3: profile(0.15, 0.85, 0.85, 0.6, 0.75, "lapsing"),
        4: profile(0.7, 0.75, 0.97, 0.97, 0.75),
    })
    assert {s: n.name for s, n in names.items()} == {
        0: "Champions", 1: "Lost", 2: "New Customers", 3: "Can't Lose Them", 4: "Big Spenders"}
    assert names[1].action == next(n.action for n in segment_catalogue().names if n.name == "Lost")


def test_names_are_unique_and_deterministic_even_for_similar_segments():
    similar = {i: profile(0.9, 0.9, 0.9 - i * 0.01) for i in range(6)}
    first = assign_names(similar)
    assert len({n.name for n in first.values()}) == 6
    assert assign_names(similar) == first


def test_a_segment_long_gone_is_named_as_gone_whatever_its_standing():
    # The standing alone matches About To Sleep best (recency 0.4 among customers mostly gone too).
    about_to_sleep = profile(0.4, 0.25, 0.3, 0.45, 0.4, activity=None)
    assert assign_names({0: about_to_sleep})[0].name == "About To Sleep"
    gone = profile(0.4, 0.25, 0.3, 0.45, 0.4, activity="lapsed")
    assert assign_names({0: gone, 1: profile(0.9, 0.6, 0.7)})[0].name in {"Hibernating", "Lost"}
    text = describe(gone, {"recency_days": 491, "frequency": 1, "monetary": 20, "avg_order_value": 20},
                    currency="GBP")
    assert text.startswith("Customers who have not bought for a long time (median 491 days ago)")


def test_more_segments_than_names_keep_the_plain_name_for_the_best_match():
    rng = random.Random(4)
    profiles = {i: profile(*(rng.random() for _ in DIMENSIONS), activity=rng.choice(["active", "lapsing", "lapsed"]))
                for i in range(50)}
    names = assign_names(profiles)
    assert len({n.name for n in names.values()}) == 50, "every segment its own name"
    catalogue = {n.name: n for n in segment_catalogue().names}

    def cost(segment, entry):
        return sum((profiles[segment].standing[d] - v) ** 2 for d, v in zip(DIMENSIONS, catalogue[entry].standing))

    for segment, name in names.items():
        base = name.name.split(" (")[0]
        assert catalogue[base].activity == profiles[segment].activity, "named from its own activity only"
        holder = next(s for s, n in names.items() if n.name == base)
        assert cost(holder, base) <= cost(segment, base) + 1e-12, f"{name.name} matches {base} better than its holder"
    assert assign_names(profiles) == names


def test_an_extra_segment_is_named_by_what_sets_it_apart():
    names = assign_names({0: profile(0.85, 0.9, 0.9, 0.6, 0.8), 1: profile(0.85, 0.9, 0.5, 0.6, 0.8)},
                         _one_name_catalogue())
    assert {n.name for n in names.values()} == {"Champions", "Champions (lower spend)"}


def _one_name_catalogue():
    from dataclasses import replace

    catalogue = segment_catalogue()
    return replace(catalogue, names=tuple(n for n in catalogue.names if n.name in ("Champions", "At Risk", "Lost")))


def test_customers_gone_for_many_times_their_rhythm_make_a_lapsed_segment(spark):
    # Most customers bought twice a month apart, then not for 14 months: they are gone.
    as_of = dt.date(2013, 1, 1)
    rows = []
    for i in range(40):
        last = dt.date(2011, 11, 1) if i < 34 else dt.date(2012, 12, 20)
        first = last - dt.timedelta(days=30)
        rows.append((str(i), (as_of - last).days, 30.0, first, last, 1 if i < 34 else 0))
    features = spark.createDataFrame(rows, "customer_id string, recency_days int, avg_days_between_orders double, "
                                           "first_purchase_date date, last_purchase_date date, segment_id int")
    for column in ("frequency", "monetary", "avg_order_value", "tenure_days"):
        features = features.withColumn(column, features["recency_days"] * 0 + 1)
    profiles = segment_profiles(features.select("customer_id", "segment_id"), customer_standings(features))
    assert profiles[1].activity == "lapsed" and profiles[0].activity == "active"
    assert profiles[0].recency_in_typical_gaps == pytest.approx(12 / 30), "12 days, the typical gap 30"
    assert assign_names(profiles)[1].name in {"Hibernating", "Lost"}


@pytest.fixture
def catalogue_copy(tmp_path):
    path = tmp_path / "segment_names.yaml"
    shutil.copy(CONFIG_DIR / "segment_names.yaml", path)

    def edit(old, new):
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))
        return path

    return edit


@pytest.mark.parametrize("old, new, entry, message", [
    ("- name: Big Spenders", "- name: Champions", "names[1]", "name 'Champions' appears twice"),
    ("recency: 0.85,", "recency: 1.4,", "names[0] (Champions).standing.recency", "1.4 is not a number within 0..1"),
    ("activity: active\n    standing: {recency: 0.85", "activity: dormant\n    standing: {recency: 0.85",
     "names[0] (Champions).activity", "'dormant' is not one of active, lapsing, lapsed"),
    ("tenure: 0.8}", "}", "names[0] (Champions).standing", "missing key 'tenure'"),
    ("  name: No Net Purchases", "  name: Lost", "without_net_purchases.name", "is also a name in names"),
    ("lapsed_after: 3", "lapsed_after: 1", "activity", "lapsed_after must be greater"),
])
def test_a_broken_catalogue_is_one_error_naming_the_file_and_entry(catalogue_copy, old, new, entry, message):
    path = catalogue_copy(old, new)
    with pytest.raises(RulesError) as error:
        parse_segment_catalogue(path)
    assert str(error.value).startswith(f"{path}: {entry}: ") and message in str(error.value), str(error.value)


def test_an_empty_catalogue_or_an_activity_without_names_is_refused(tmp_path):
    original = (CONFIG_DIR / "segment_names.yaml").read_text()
    path = tmp_path / "segment_names.yaml"
    path.write_text(original[:original.index("names:")] + "names: []\n")
    with pytest.raises(RulesError, match="names: must be a non-empty list"):
        parse_segment_catalogue(path)
    path.write_text(original.replace("activity: lapsed", "activity: lapsing"))
    with pytest.raises(RulesError, match="no name has activity 'lapsed'"):
        parse_segment_catalogue(path)


@pytest.mark.parametrize("old, new, entry", [
    ("future_tolerance_days: 1", "future_tolerance_days: -2", "future_tolerance_days"),
    ('earliest_plausible_date: "1990-01-01"', 'earliest_plausible_date: "1990-13-01"', "earliest_plausible_date"),
    ("non_product_prefixes:", "non_product_prefix:", "(file)"),
])
def test_a_broken_cleaning_file_is_one_error_naming_the_entry(tmp_path, old, new, entry):
    path = tmp_path / "cleaning.yaml"
    path.write_text((CONFIG_DIR / "cleaning.yaml").read_text().replace(old, new))
    with pytest.raises(RulesError) as error:
        parse_cleaning_rules(path)
    assert str(error.value).startswith(f"{path}: {entry}: ")


def test_rule_based_segments_use_the_catalogues_names():
    # One vocabulary on a card: "Potential Loyalists" by the model was "Potential Loyalist" by RFM rules.
    catalogue = {entry.name for entry in segment_catalogue().names} | {segment_catalogue().without_net_purchases.name}
    assert {rule.name for rule in rfm_rules()} <= catalogue


def test_description_in_plain_words():
    text = describe(profile(0.9, 0.1, 0.5, 0.9), {"recency_days": 5, "frequency": 1, "monetary": 1234.5,
                                                   "avg_order_value": 987}, currency="GBP")
    assert text == ("Customers who bought recently (median 5 days ago), rarely order (median 1 order), "
                    "spend a moderate amount (median 1,235 GBP net), with large baskets (median order 987 GBP).")


def test_active_segments_are_worded_by_their_days_not_by_their_standing():
    # On the real data "Promising" (31 days, a lower standing) read "bought a while ago" beside
    # "Loyal Customers" (24 days) "bought recently"; the typical gap between purchases is 59 days.
    medians = {"frequency": 1, "monetary": 300, "avg_order_value": 250}
    promising = describe(profile(0.45, 0.3, 0.4, recency_in_gaps=31 / 59), {**medians, "recency_days": 31},
                         currency="GBP")
    slipping = describe(profile(0.7, 0.5, 0.6, recency_in_gaps=108 / 59), {**medians, "recency_days": 108},
                        currency="GBP")
    assert promising.startswith("Customers who bought recently (median 31 days ago)")
    assert slipping.startswith("Customers who bought a while ago (median 108 days ago)")


def test_description_rounds_a_half_as_the_views_do():
    # A median of an even count of whole days or orders ends in .5: SQL's round (the views) takes it
    # away from zero, and the description must read the same figure.
    text = describe(profile(0.5, 0.5, 0.5, 0.5), {"recency_days": 30.5, "frequency": 2.5, "monetary": 0.5,
                                                   "avg_order_value": 99.5}, currency="GBP")
    assert "(median 31 days ago)" in text and "(median 3 orders)" in text
    assert "(median 1 GBP net)" in text and "(median order 100 GBP)" in text


def test_the_profile_figure_writes_counted_medians_whole_as_the_descriptions_do():
    from customer_segmentation.core.charts import figure_text

    # It wrote 30 for the description's 31 days and 9.00 days, 4.00 orders.
    assert [figure_text("recency_days", 30.5), figure_text("recency_days", 9.0), figure_text("frequency", 2.5),
            figure_text("monetary", 1098.5)] == ["31", "9", "3", "1,099"]
    assert figure_text("return_rate", 0.35) == "0.35" and figure_text("avg_order_value", 4.5) == "4.50"
