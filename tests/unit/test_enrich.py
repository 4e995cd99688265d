"""Optional sources on hand-made rows: typing and defaults, encodings, scores, value tiers, over-index."""

import datetime as dt
import itertools
import math

import numpy as np
import pytest
from pyspark.ml.feature import SQLTransformer
from pyspark.sql import functions as F

from customer_segmentation.core.settings import FEATURE_PRESETS, Settings
from customer_segmentation.core.tables import table
from customer_segmentation.gold import enrichment as enrich
from customer_segmentation.gold import value_tiers
from customer_segmentation.models.preparation import FeaturePlan, plan_features, preparation_statement
from customer_segmentation.publish import segment_mix
from customer_segmentation.silver import quarantine
from customer_segmentation.silver import sources as attributes

AS_OF = dt.date(2011, 12, 10)


def bronze_rows(spark, source, rows):
    """rows: dicts of canonical text fields (missing = null); lineage filled in."""
    spec = table(f"{source}_raw").spec()
    records = []
    for i, row in enumerate(rows):
        record = {c.name: None for c in spec.columns}
        record.update(row)
        record.update({"_raw_line": ",".join(str(v) for v in row.values()), "_source_file": "f.csv",
                       "_source_profile": source, "_ingested_at": dt.datetime(2012, 1, 1), "_line_id": str(i)})
        records.append(tuple(record[c.name] for c in spec.columns))
    return spark.createDataFrame(records, spec.schema)


@pytest.fixture(scope="module")
def customers_marked(spark):
    rows = [
        {"customer_id": "1.0", "age": "34", "income": "42000", "education": "master", "loyalty_tier": "Gold",
         "gender": "F", "marital_status": "Married", "region": "London"},
        {"customer_id": "2", "age": "", "income": "", "education": "", "loyalty_tier": "",
         "gender": " ", "marital_status": None, "region": ""},
        {"customer_id": "3", "age": "forty"},
        {"customer_id": "4", "age": "230"},
        {"customer_id": "5", "loyalty_tier": "Diamond"},
        {"customer_id": "", "age": "30"},
        {"customer_id": "6", "age": "50", "_malformed": "7 fields where the layout has 8"},
        {"customer_id": "1.0", "age": "34", "income": "42000", "education": "master", "loyalty_tier": "Gold",
         "gender": "F", "marital_status": "Married", "region": "London"},
    ]
    marked = attributes.mark_current(quarantine.mark_duplicates(
        attributes.classify(bronze_rows(spark, "customers", rows), "customers")), "customers")
    return {i: r.asDict() for i, r in enumerate(marked.orderBy(marked["_line_id"].cast("int")).collect())}


def test_a_valid_customer_is_typed_and_its_levels_normalised(customers_marked):
    first = customers_marked[0]
    assert first["reject_reason"] is None
    assert (first["_v_customer_id"], first["_v_age"], first["_v_income"]) == ("1", 34, 42000.0)
    assert (first["_v_education"], first["_v_loyalty_tier"]) == ("Master", "Gold")
    assert first["_defaults"] == []


def test_blank_fields_get_their_documented_defaults_and_are_recorded(customers_marked):
    blank = customers_marked[1]
    assert blank["reject_reason"] is None
    assert blank["_v_loyalty_tier"] == "Bronze", "no tier means the lowest tier"
    assert (blank["_v_gender"], blank["_v_marital_status"], blank["_v_region"]) == ("Unknown",) * 3
    assert (blank["_v_age"], blank["_v_income"], blank["_v_education"]) == (None, None, None), "unknown stays null"
    assert sorted(blank["_defaults"]) == ["gender", "loyalty_tier", "marital_status", "region"]


@pytest.mark.parametrize("line, reason, detail", [
    (2, "invalid_number", 'age ["forty"] is not valid'),
    (3, "out_of_range", "age 230 is outside 16..110"),
    (4, "invalid_value", "loyalty_tier [\"Diamond\"] is not valid (allowed: Bronze, Silver, Gold, Platinum)"),
    (5, "missing_value", "customer_id is empty"),
    (6, "malformed_line", "7 fields where the layout has 8"),
    (7, "duplicate_line", "exact duplicate of a line kept from f.csv"),
])
def test_bad_lines_get_a_precise_reason(customers_marked, line, reason, detail):
    assert (customers_marked[line]["reject_reason"], customers_marked[line]["reject_detail"]) == (reason, detail)


def test_engagement_counts_default_to_zero_and_months_are_checked(spark):
    rows = [{"customer_id": "1", "month": "2011-03", "emails_opened": "", "sessions": "4"},
            {"customer_id": "1", "month": "March", "sessions": "1"},
            {"customer_id": "1", "month": "", "sessions": "1"},
            {"customer_id": "1", "month": "2011-04", "sessions": "-3"}]
    got = attributes.classify(bronze_rows(spark, "engagement", rows), "engagement").collect()
    assert got[0]["reject_reason"] is None and got[0]["_v_emails_opened"] == 0 and got[0]["_v_sessions"] == 4
    assert "emails_opened" in got[0]["_defaults"]
    assert [r["reject_reason"] for r in got[1:]] == ["invalid_month", "missing_value", "out_of_range"]


def test_the_latest_line_of_a_key_is_current(spark):
    rows = [{"stock_code": "A1", "category": "Toys", "unit_cost": "1.0"},
            {"stock_code": "A1", "category": "Gifts", "unit_cost": "1.5"}]
    df = bronze_rows(spark, "products", rows)
    df = df.withColumn("_ingested_at", F.when(F.col("_line_id") == "1", F.lit(dt.datetime(2012, 2, 1)))
                       .otherwise(F.col("_ingested_at")))
    marked = attributes.mark_current(quarantine.mark_duplicates(attributes.classify(df, "products")), "products")
    silver = {r["category"]: r["is_current"] for r in attributes.to_silver(marked, "products").collect()}
    assert silver == {"Toys": False, "Gifts": True}


def test_ordinal_levels_run_from_zero_to_one_and_unknown_is_null(spark):
    rows = spark.createDataFrame([("Bronze",), ("Silver",), ("Gold",), ("Platinum",), (None,)], "tier string")
    levels = [r[0] for r in rows.select(enrich.ordinal_level(rows["tier"], attributes.LOYALTY_TIERS)).collect()]
    assert levels == [0.0, pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0, None]


def test_scores_and_defaults_for_customers_missing_from_a_source(spark):
    features = spark.createDataFrame([("1", 100.0, 2, 50.0), ("2", -20.0, 1, 30.0)],
                                     "customer_id string, monetary double, frequency long, avg_order_value double")
    customers = spark.createDataFrame([("1", 40, 1000.0, 0.5, 1.0, "F", "Single", "London")],
                                      "customer_id string, age int, income double, education_level double, "
                                      "loyalty_level double, gender string, marital_status string, region string")
    engagement = spark.createDataFrame([("1", 10, 3, 4, 20, 12.5)],
                                       "customer_id string, emails_opened long, emails_clicked long, sessions long, "
                                       "page_views long, session_minutes double")
    got = {r["customer_id"]: r.asDict() for r in enrich.enrich(features, customers, engagement).collect()}
    one, two = got["1"], got["2"]
    assert one["engagement_score"] == 10 + 2 * 3
    assert one["behaviour_score"] == pytest.approx(math.log1p(4) + math.log1p(20) + math.log1p(12.5))
    assert one["spend_engagement"] == pytest.approx(math.log1p(100) * math.log1p(16))
    assert "historical_clv" not in one, "it was gross revenue under another name"
    assert (two["loyalty_level"], two["gender"], two["region"], two["age"]) == (0.0, "Unknown", "Unknown", None)
    assert (two["emails_opened"], two["sessions"], two["engagement_score"], two["behaviour_score"]) == (0, 0, 0.0, 0.0)
    assert two["spend_engagement"] == 0.0


def test_engagement_counts_only_months_before_the_reference_month(spark):
    engagement = spark.createDataFrame([("1", "2011-11", 1, 0, 0, 0, 0.0), ("1", "2011-12", 5, 0, 0, 0, 0.0)],
                                       "customer_id string, month string, emails_opened int, emails_clicked int, "
                                       "sessions int, page_views int, session_minutes double")
    assert enrich.engagement_totals(engagement, AS_OF).first()["emails_opened"] == 1


@pytest.mark.parametrize("centres, higher_is_better, expected", [
    ([5.0, 1.0, 9.0, 3.0], True, {1: 1, 3: 2, 0: 3, 2: 4}),
    ([5.0, 1.0, 9.0, 3.0], False, {2: 1, 0: 2, 3: 3, 1: 4}),   # recency: fewer days is better
    ([2.0, 8.0], True, {0: 1, 1: 4}),
    ([7.0], True, {0: 2}),
])
def test_value_tier_scores_order_clusters_so_higher_is_better(centres, higher_is_better, expected):
    assert value_tiers.tier_of_clusters(centres, higher_is_better) == expected


def _least_sum_of_squares(values: np.ndarray, k: int) -> float:
    """Every way to cut the sorted distinct values into k intervals, tried (small inputs only)."""
    distinct = np.unique(values)
    best = math.inf
    for cuts in itertools.combinations(range(1, len(distinct)), min(k, len(distinct)) - 1):
        edges = [-math.inf, *[(distinct[c - 1] + distinct[c]) / 2 for c in cuts], math.inf]
        groups = [values[(values >= a) & (values < b)] for a, b in zip(edges, edges[1:])]
        best = min(best, sum(((g - g.mean()) ** 2).sum() for g in groups))
    return best


def test_value_tiers_intervals_are_the_exact_k_means_optimum():
    rng = np.random.default_rng(7)
    for _ in range(200):
        values = np.round(rng.lognormal(0.0, 1.5, rng.integers(1, 30)), rng.integers(0, 3))  # with repeats
        k = int(rng.integers(1, 5))
        thresholds, means = value_tiers.optimal_intervals(values, k)
        cluster = np.searchsorted(thresholds, values, side="right")  # value < threshold: an earlier interval
        assert len(means) == min(k, len(np.unique(values))) == len(thresholds) + 1
        assert np.allclose(means, [values[cluster == c].mean() for c in range(len(means))])
        found = sum(((values[cluster == c] - means[c]) ** 2).sum() for c in range(len(means)))
        assert math.isclose(found, _least_sum_of_squares(values, k), rel_tol=1e-9, abs_tol=1e-12), (values, k)


def test_value_tiers_intervals_of_neighbouring_doubles_and_of_nothing():
    low = 1.0
    thresholds, means = value_tiers.optimal_intervals(np.array([low, np.nextafter(low, 2.0)]), 4)
    assert low < thresholds[0] <= np.nextafter(low, 2.0) and means == [low, np.nextafter(low, 2.0)]
    assert value_tiers.optimal_intervals(np.array([3.0, 3.0]), 4) == ([], [3.0])
    assert value_tiers.optimal_intervals(np.array([]), 4)[0] == []


def test_value_tiers_put_the_best_customers_high_and_the_worst_low(spark):
    rows = [(f"b{i}", 2 + i, 40 + i, 9000.0 + i) for i in range(5)]          # recent, frequent, big
    rows += [(f"m{i}", 90 + i, 8 + i, 800.0 + i) for i in range(5)]
    rows += [(f"n{i}", 180 + i, 3 + i, 200.0 + i) for i in range(5)]
    rows += [(f"w{i}", 350 + i, 1, 10.0 + i) for i in range(5)]              # long gone, one small order
    features = spark.createDataFrame([(*r, AS_OF) for r in rows],
                                     "customer_id string, recency_days int, frequency long, monetary double, "
                                     "as_of_date date")
    tiers = {r["customer_id"]: r for r in value_tiers.value_tiers(features).collect()}
    assert all(tiers[f"b{i}"]["value_tier"] == "High" and tiers[f"b{i}"]["value_score"] == 12 for i in range(5))
    assert all(tiers[f"w{i}"]["value_tier"] == "Low" and tiers[f"w{i}"]["value_score"] == 3 for i in range(5))
    assert {tiers[f"m{i}"]["recency_tier"] for i in range(5)} == {3}


def test_over_index_compares_a_segments_share_with_everyones(spark):
    spend = spark.createDataFrame([(0, "Toys", 80.0), (0, "Garden", 20.0), (1, "Toys", 20.0), (1, "Garden", 80.0)],
                                  "segment_id int, category string, net_revenue double")
    got = {(r["segment_id"], r["category"]): r for r in segment_mix.over_index(spend).collect()}
    assert got[(0, "Toys")]["share_of_segment_spend"] == 0.8
    assert got[(0, "Toys")]["share_of_all_spend"] == 0.5
    assert got[(0, "Toys")]["over_index"] == pytest.approx(1.6)
    assert got[(1, "Toys")]["over_index"] == pytest.approx(0.4)


def test_categorical_features_are_one_hot_and_unknown_numbers_take_the_median(spark):
    df = spark.createDataFrame([("a", 20, "F"), ("b", None, "M"), ("c", 40, "F"), ("d", 30, "O'Neil")],
                               "customer_id string, age int, gender string")
    plan = plan_features(df, ["age", "gender"])
    assert plan == FeaturePlan(("age",), (("age", 30.0),), (("gender", ("F", "M", "O'Neil")),))
    statement = preparation_statement(plan)
    assert "coalesce(`age`, 30.0)" in statement and "`age__unknown`" in statement
    assert "'O\\'Neil'" in statement, "category values are escaped SQL literals"
    out = spark.createDataFrame([("x", None, "M")], "customer_id string, age int, gender string")
    row = SQLTransformer(statement=statement).transform(out).first()
    assert row["age__log"] == pytest.approx(math.log1p(30)) and row["age__unknown"] == 1.0
    assert (row["gender__0"], row["gender__1"]) == (0.0, pytest.approx(math.sqrt(0.5)))


def test_feature_presets_parse_to_their_columns():
    assert Settings.from_params({"features": "rfm"}).features == ("recency_days", "frequency", "monetary")
    assert Settings.from_params({"features": "rfm_plus"}).features == Settings().features
    full = Settings.from_params({"features": "full"}).features
    assert full == FEATURE_PRESETS["full"] and {"engagement_score", "gender", "loyalty_level"} <= set(full)
