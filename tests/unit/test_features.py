"""Gold features, RFM scores and rule-based segments on hand-made orders."""

import datetime as dt
from decimal import Decimal

import pytest
from pyspark.sql import functions as F

from customer_segmentation.core.errors import ConfigError
from customer_segmentation.core.rules import RulesError, parse_rfm_rules, rfm_rules
from customer_segmentation.gold import features, insights, rfm
from customer_segmentation.silver.orders import ORDERS

AS_OF = dt.date(2011, 12, 10)


def orders_frame(spark, lines):
    """lines: (customer, invoice, day, quantity, price[, stock_code[, country]])"""
    rows = []
    for i, line in enumerate(lines):
        customer, invoice, day, quantity, price = line[:5]
        code = line[5] if len(line) > 5 else "85123A"
        country = line[6] if len(line) > 6 else "United Kingdom"
        date = dt.date.fromisoformat(day)
        rows.append({
            "invoice_no": invoice, "stock_code": code, "description": "ITEM", "quantity": quantity,
            "invoice_timestamp": dt.datetime.combine(date, dt.time(10)), "invoice_date": date,
            "unit_price": Decimal(str(price)), "line_amount": Decimal(str(price)) * quantity,
            "customer_id": customer, "country": country,
            "is_cancellation": invoice.startswith("C") or quantity < 0,
            "is_product": code not in ("POST", "M", "DOT"), "has_customer": customer is not None,
            "_source_file": "f", "_ingested_at": dt.datetime(2012, 1, 1), "_line_id": str(i), "_content_hash": str(i),
            "_content_key": i, "_file_fingerprint": "f",
        })
    schema = ORDERS.schema
    return spark.createDataFrame([tuple(r[c.name] for c in ORDERS.columns) for r in rows], schema)


def features_of(spark, lines, as_of=AS_OF):
    return {r["customer_id"]: r.asDict() for r in
            features.customer_features(orders_frame(spark, lines), as_of).collect()}


def test_rfm_basics(spark):
    result = features_of(spark, [
        ("1", "100", "2011-01-10", 2, 5.0), ("1", "100", "2011-01-10", 1, 3.0),
        ("1", "200", "2011-12-01", 1, 10.0), ("1", "201", "2011-12-01", 1, 1.0, "POST")])
    c = result["1"]
    assert c["frequency"] == 2
    assert c["monetary"] == pytest.approx(23.0) and c["gross_revenue"] == pytest.approx(23.0)
    assert c["recency_days"] == 9 and c["tenure_days"] == 334
    assert c["first_purchase_date"] == dt.date(2011, 1, 10) and c["last_purchase_date"] == dt.date(2011, 12, 1)
    assert c["avg_order_value"] == pytest.approx(11.5)
    assert c["distinct_products"] == 1
    assert c["avg_days_between_orders"] == pytest.approx(325.0)
    assert c["as_of_date"] == AS_OF


def test_distinct_products_count_each_product_bought_once(spark):
    # 22 twice, 23 once, 24 only returned, postage and a line after the reference date: two products.
    c = features_of(spark, [("1", "1", "2011-01-10", 2, 5.0, "22"), ("1", "2", "2011-02-10", 1, 5.0, "22"),
                            ("1", "2", "2011-02-10", 1, 5.0, "23"), ("1", "C3", "2011-02-11", -1, 5.0, "24"),
                            ("1", "2", "2011-02-10", 1, 5.0, "POST"), ("1", "4", "2011-12-11", 1, 5.0, "25")])["1"]
    assert c["distinct_products"] == 2


def test_bought_then_cancelled_is_net_zero(spark):
    c = features_of(spark, [("7", "300", "2011-01-18", 74215, 1.04), ("7", "C301", "2011-01-18", -74215, 1.04)])["7"]
    assert c["monetary"] == 0.0 and c["gross_revenue"] == pytest.approx(77183.6)
    assert c["returns_value"] == pytest.approx(77183.6) and c["return_rate"] == 1.0
    assert c["frequency"] == 1


def test_customer_who_only_returned_goods_has_numbers_everywhere(spark):
    c = features_of(spark, [("9", "C400", "2011-03-01", -4, 2.5)])["9"]
    assert c["monetary"] == -10.0 and c["frequency"] == 0 and c["gross_revenue"] == 0.0
    assert c["return_rate"] == 1.0 and c["avg_order_value"] == 0.0
    assert c["last_purchase_date"] == dt.date(2011, 3, 1) and c["recency_days"] == 284
    assert all(v is not None for v in c.values())


def test_non_product_only_customer_is_kept_with_zero_value(spark):
    c = features_of(spark, [("5", "500", "2011-05-01", 1, 18.0, "POST")])["5"]
    assert c["monetary"] == 0.0 and c["frequency"] == 0 and c["distinct_products"] == 0


def test_guests_are_not_customers_and_later_lines_are_not_counted(spark):
    result = features_of(spark, [(None, "600", "2011-05-01", 1, 1.0), ("2", "601", "2011-05-01", 1, 1.0),
                                 ("2", "602", "2011-12-20", 1, 50.0)])
    assert set(result) == {"2"}
    assert result["2"]["monetary"] == 1.0 and result["2"]["frequency"] == 1


def test_main_country_is_the_most_frequent_then_alphabetical(spark):
    result = features_of(spark, [("3", "1", "2011-05-01", 1, 1.0, "A1", "Spain"),
                                 ("3", "1", "2011-05-01", 1, 1.0, "A2", "France")])
    assert result["3"]["main_country"] == "France"


def test_as_of_date_before_all_data_is_a_config_error(spark):
    orders = orders_frame(spark, [("1", "1", "2011-05-01", 1, 1.0)])
    with pytest.raises(ConfigError, match="as_of_date"):
        features.check_as_of_date(orders, dt.date(2011, 5, 1))
    assert features.default_as_of_date(orders) == dt.date(2011, 5, 2)


def scores(spark, values):
    df = spark.createDataFrame([(str(i), float(v)) for i, v in enumerate(values)], "customer_id string, v double")
    return [r["s"] for r in rfm.with_score(df, df["v"], "s").orderBy(df["customer_id"].cast("int")).collect()]


def test_scores_follow_rank_and_ties_share_the_score_of_their_lowest_rank(spark):
    assert scores(spark, range(10)) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scores(spark, [7.0]) == [3], "a single customer sits in the middle"
    assert scores(spark, [2.0] * 6) == [3] * 6, "all-equal values share the middle score"
    tied = scores(spark, [1, 1, 1, 1, 1, 1, 2, 3, 4, 5])
    assert tied == [1] * 6 + [2, 3, 4, 5], "ties share one score, starting at their lowest rank"
    assert scores(spark, list(reversed([1, 1, 1, 1, 1, 1, 2, 3, 4, 5]))) == list(reversed(tied)), "order-free"


def test_heavy_ties_still_use_every_score(spark):
    # Like order counts: most customers bought once, a long thin tail bought more often.
    values = [1] * 600 + [2] * 250 + [3] * 80 + [4] * 40 + [5] * 20 + [6] * 6 + [40] * 4
    got = scores(spark, values)
    by_value = {v: {s for v2, s in zip(values, got) if v2 == v} for v in set(values)}
    assert all(len(s) == 1 for s in by_value.values()), "a value has one score"
    assert [by_value[v].pop() for v in sorted(by_value)] == [1, 2, 3, 4, 5, 5, 5]
    # Without the bound, two orders (customers 601-850) would start at score floor(5 * 600/1000) + 1 = 4.
    assert sorted(set(scores(spark, [1] * 90 + [2, 3, 4, 5, 6, 7]))) == [1, 2, 3, 4, 5]
    assert sorted(set(scores(spark, [1] * 90 + [2] * 3 + [3] * 3))) == [3, 5], "three values: midpoint percentiles"


def test_recency_is_reversed_and_segments_follow_the_rules(spark):
    rows = [("a", "1", "2011-12-09", 1, 100.0)] + [("a", str(i), "2011-11-01", 1, 100.0) for i in range(2, 12)]
    rows += [("b", "20", "2011-01-02", 1, 1.0), ("c", "30", "2011-06-01", 1, 10.0)]
    feats = features.customer_features(orders_frame(spark, rows), AS_OF)
    seg = {r["customer_id"]: r for r in rfm.rfm_segments(feats, rfm_rules(), "No Net Purchases").collect()}
    assert seg["a"]["r_score"] == 5 and seg["b"]["r_score"] == 1
    assert seg["a"]["rfm_cell"] == f"{seg['a']['r_score']}{seg['a']['f_score']}{seg['a']['m_score']}"
    for row in seg.values():
        expected = next(rule.name for rule in rfm_rules()
                        if rule.matches(row["r_score"], row["f_score"], row["m_score"]))
        assert row["rfm_segment"] == expected


CELLS = [
    ((5, 5, 5), "Champions"), ((4, 4, 4), "Champions"), ((3, 3, 3), "Loyal Customers"),
    ((5, 3, 4), "Loyal Customers"), ((1, 5, 5), "Can't Lose Them"), ((2, 4, 1), "At Risk"),
    ((1, 3, 3), "At Risk"), ((5, 1, 1), "New Customers"), ((4, 1, 5), "Promising"),
    ((5, 2, 1), "Potential Loyalists"), ((4, 5, 1), "Potential Loyalists"), ((3, 2, 5), "Need Attention"),
    ((3, 1, 1), "About To Sleep"), ((2, 2, 2), "Hibernating"), ((1, 1, 1), "Lost"), ((1, 2, 5), "Lost"),
]


@pytest.fixture(scope="module")
def segment_of_cell(spark):
    cells = [cell for cell, _ in CELLS]
    df = spark.createDataFrame(cells, "r_score int, f_score int, m_score int")
    rows = df.select("r_score", "f_score", "m_score", rfm.rfm_segment_expression(rfm_rules()).alias("s")).collect()
    return {(r["r_score"], r["f_score"], r["m_score"]): r["s"] for r in rows}


@pytest.mark.parametrize("cell, segment", CELLS)
def test_each_rule_based_segment(segment_of_cell, cell, segment):
    assert segment_of_cell[cell] == segment


def test_customers_without_net_purchases_get_the_rule_segment_and_no_scores(spark):
    rows = [("buyer", "1", "2011-12-01", 2, 5.0), ("returner", "C2", "2011-11-01", -3, 4.0),
            ("cancelled", "3", "2011-10-01", 5, 2.0), ("cancelled", "C4", "2011-10-02", -5, 2.0)]
    feats = features.customer_features(orders_frame(spark, rows), AS_OF)
    seg = {r["customer_id"]: r for r in rfm.rfm_segments(feats, rfm_rules(), "No Net Purchases").collect()}
    assert set(seg) == {"buyer", "returner", "cancelled"}, "every customer, once"
    for customer in ("returner", "cancelled"):
        assert seg[customer]["rfm_segment"] == "No Net Purchases"
        assert (seg[customer]["r_score"], seg[customer]["rfm_cell"]) == (None, None)
    assert seg["buyer"]["r_score"] == 3, "scored among the customers with net purchases only"


def test_rules_must_cover_every_cell(tmp_path):
    path = tmp_path / "rfm_segments.yaml"
    path.write_text("segments:\n  - {name: Only, r: [1, 5], f: [1, 5], m: [2, 5]}\n")
    with pytest.raises(RulesError, match="without a segment"):
        parse_rfm_rules(path)
    assert len({rule.name for rule in rfm_rules()}) == 11


def test_insight_tables(spark):
    rows = [("1", "1", "2011-11-07", 10, 1.0), ("2", "2", "2011-11-08", 1, 30.0, "22", "France"),
            (None, "3", "2011-10-03", 5, 2.0), ("2", "C4", "2011-11-08", -1, 30.0, "22", "France"),
            ("1", "5", "2011-11-07", 1, 9.0, "POST")]
    orders = orders_frame(spark, rows)
    feats = features.customer_features(orders, AS_OF)
    monthly = {r["month"]: r for r in insights.monthly_revenue(orders, feats, AS_OF).collect()}
    november = monthly[dt.date(2011, 11, 1)]
    assert (november["net_revenue"], november["gross_revenue"], november["returns_value"]) == (10.0, 40.0, 30.0)
    assert (november["orders"], november["active_customers"], november["new_customers"]) == (2, 2, 2)
    assert monthly[dt.date(2011, 10, 1)]["net_revenue"] == 10.0, "guest sales count in revenue"
    # The data starts on 3 October and the reference date is 10 December: October is 29 of 31 days.
    assert [monthly[month]["days_counted"] for month in sorted(monthly)] == [29, 30]
    cut = dt.date(2011, 11, 8)  # November cut short too: the 1st to the 7th
    cut_short = insights.monthly_revenue(orders, features.customer_features(orders, cut), cut).collect()
    assert [(r["month"].month, r["days_counted"]) for r in cut_short] == [(10, 29), (11, 7)]
    weekdays = {r["weekday"]: r for r in insights.revenue_by_weekday(orders, AS_OF).collect()}
    assert weekdays["Monday"]["weekday_number"] == 1 and weekdays["Monday"]["net_revenue"] == 20.0
    assert sum(r["share_of_revenue"] for r in weekdays.values()) == pytest.approx(1.0)
    countries = {r["country"]: r for r in insights.revenue_by_country(orders, AS_OF).collect()}
    assert countries["France"]["net_revenue"] == 0.0 and countries["United Kingdom"]["customers"] == 1
    top = {r["stock_code"]: r for r in insights.top_products(orders, AS_OF).collect()}
    assert top["85123A"]["quantity_sold"] == 15 and top["85123A"]["rank_by_quantity"] == 1
    assert "POST" not in top
    concentration = {r["top_percent"]: r for r in insights.revenue_concentration(feats, AS_OF).collect()}
    assert concentration[1]["customers"] == 1 and concentration[1]["share_of_net_revenue"] == 1.0
    lost = insights.lost_customers_monthly(feats, AS_OF).collect()
    assert [(r["month"], r["customers_lost"]) for r in lost] == [(dt.date(2011, 11, 1), 2)]
    best = insights.top_customers(feats).first()
    assert (best["rank"], best["customer_id"]) == (1, "1")


def test_top_products_count_purchase_invoices_once_and_name_a_product_by_its_usual_description(spark):
    rows = [("1", "1", "2011-11-07", 2, 1.0), ("1", "1", "2011-11-07", 3, 1.0), ("2", "2", "2011-11-08", 1, 1.0),
            ("2", "C3", "2011-11-08", -1, 1.0), ("3", "4", "2011-11-09", 1, 1.0), ("3", "5", "2011-11-09", 1, 1.0),
            ("3", "6", "2011-11-10", 1, 1.0, "22"), ("3", "C7", "2011-11-10", -2, 1.0, "23")]
    descriptions = ["MUG", "MUG", "CUP", "CUP", "", "BOWL", None, "PLATE"]
    orders = orders_frame(spark, rows).withColumn(
        "description", F.element_at(F.array(*[F.lit(d) for d in descriptions]), F.col("_line_id").cast("int") + 1))
    top = {r["stock_code"]: r for r in insights.top_products(orders, AS_OF).collect()}
    # Invoice 1 holds two lines of the product, C3 is a return: 1, 2, 4 and 5 are its orders. CUP and
    # MUG have two lines each (the return counts): the first alphabetically; an empty one is no name.
    assert (top["85123A"]["orders"], top["85123A"]["description"]) == (4, "CUP")
    assert (top["22"]["orders"], top["22"]["description"]) == (1, None), "no description: none"
    assert top["23"]["orders"] == 0, "a product only returned has no orders"


def test_gold_lines_give_every_table_the_rows_the_whole_orders_give(spark):
    # The task builds every table from one persisted frame of the lines gold reads: the lines it
    # leaves out (after the reference date; guests' postage) and the columns it drops change nothing;
    # a customer with only postage still has a row of features.
    rows = [("1", "1", "2011-11-07", 10, 1.0), ("2", "2", "2011-11-08", 1, 30.0, "22", "France"),
            (None, "3", "2011-10-03", 5, 2.0), (None, "3", "2011-10-03", 1, 4.0, "POST"),
            ("2", "C4", "2011-11-08", -1, 30.0, "22", "France"), ("1", "5", "2011-11-07", 1, 9.0, "POST"),
            ("1", "6", "2011-12-11", 3, 2.0), ("3", "7", "2011-11-21", 1, 5.0, "POST")]
    orders = orders_frame(spark, rows)
    lines = features.gold_lines(orders, AS_OF)
    assert lines.count() == 6 and set(lines.columns) == set(features.GOLD_COLUMNS)

    def tables(source):
        feats = features.customer_features(source, AS_OF)
        built = [feats, insights.monthly_revenue(source, feats, AS_OF), insights.revenue_by_weekday(source, AS_OF),
                 insights.revenue_by_country(source, AS_OF), insights.top_products(source, AS_OF)]
        return [sorted(map(tuple, df.collect()), key=repr) for df in built]

    assert tables(lines) == tables(orders)


def test_shares_of_a_total_that_is_not_positive_are_undefined(spark):
    # Everything bought was cancelled: net revenue 0, so no row has a share of it.
    orders = orders_frame(spark, [("1", "1", "2011-11-07", 2, 5.0), ("1", "C2", "2011-11-08", -2, 5.0)])
    feats = features.customer_features(orders, AS_OF)
    assert [r["share_of_revenue"] for r in insights.revenue_by_country(orders, AS_OF).collect()] == [None]
    assert {r["share_of_net_revenue"] for r in insights.revenue_concentration(feats, AS_OF).collect()} == {None}
