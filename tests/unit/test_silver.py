"""Cleaning rules and reject reasons of silver, on hand-made bronze lines."""

import datetime as dt
import random
from decimal import Decimal

import pytest
from pyspark.sql import functions as F

from customer_segmentation.core.rules import cleaning_rules
from customer_segmentation.core.settings import Settings
from customer_segmentation.core.tables import table
from customer_segmentation.ingest.source_profiles import TRANSACTIONS, load_profile, parse_profile
from customer_segmentation.silver.cleaning import ISO_PATTERN, parse_timestamp
from customer_segmentation.silver.orders import classify, judge, to_orders, to_quarantine, with_reject_details
from customer_segmentation.silver.quarantine import mark_duplicates

GOOD = dict(invoice_no="536365", stock_code="85123A", description="WHITE HEART", quantity="6",
            invoice_date="2010-12-01 08:26:00", unit_price="2.55", customer_id="17850.0", country="United Kingdom")
INGESTED = dt.datetime(2011, 12, 31, 12, 0)


def bronze_frame(spark, rows):
    spec = table("transactions_raw").spec()
    records = []
    for index, row in enumerate(rows):
        values = {c.name: None for c in spec.columns}
        values.update(_raw_line=f"line {index}", _source_file=row.pop("_source_file", "file:/landing/a.csv"),
                      _source_profile="uci", _ingested_at=INGESTED, _line_id=row.pop("_line_id", f"id{index}"))
        values.update(row)
        records.append(tuple(values[c.name] for c in spec.columns))
    return spark.createDataFrame(records, spec.schema)


def classified(spark, rows, profile=None, settings=None, existing=None):
    """The lines classified and marked as silver marks a batch."""
    bronze = bronze_frame(spark, [dict(r) for r in rows])
    existing = existing if existing is not None else spark.createDataFrame(
        [], "_content_hash string, _line_id string, _source_file string, _file_fingerprint string")
    return all_lines(judge(bronze, existing, profile or load_profile("uci"), settings or Settings(), cleaning_rules(),
                           hold))


def hold(frame):
    return frame.localCheckpoint(eager=True)


def all_lines(verdicts):
    """Every line judged; each exactly once, as the batch's line count says."""
    lines = verdicts.kept.unionByName(verdicts.rejected)
    assert lines.count() == verdicts.lines
    return lines


def reasons(spark, rows, **kwargs):
    return [(r["reject_reason"], r["reject_detail"]) for r in
            classified(spark, rows, **kwargs).orderBy("_line_id").collect()]


def test_a_good_line_is_typed_and_normalised(spark):
    orders = to_orders(classified(spark, [GOOD])).collect()
    assert len(orders) == 1
    line = orders[0]
    assert line["invoice_no"] == "536365" and line["quantity"] == 6
    assert line["unit_price"] == Decimal("2.5500") and line["line_amount"] == Decimal("15.3000")
    assert line["invoice_timestamp"] == dt.datetime(2010, 12, 1, 8, 26)
    assert line["invoice_date"] == dt.date(2010, 12, 1)
    assert line["customer_id"] == "17850"
    assert (line["is_cancellation"], line["is_product"], line["has_customer"]) == (False, True, True)
    assert line["_line_id"] == "id0" and line["_source_file"] == "file:/landing/a.csv"


CUSTOMER_IDS = [
    ("17850.0", "17850"), ("17850", "17850"), (" 17850.00 ", "17850"), ("", None), (None, None),
    ("nan", None), ("NaN", None), ("None", None), ("n/a", None), ("NULL", None), ("C-42", "C-42"),
]
CANCELLATIONS = [("C536379", "-1", True), ("536379", "-5", True), ("c536379", "-1", True), ("536379", "5", False)]
PRODUCT_CODES = [
    ("POST", False), ("post", False), ("DOT", False), ("M", False), ("D", False), ("BANK CHARGES", False),
    ("AMAZONFEE", False), ("CRUK", False), ("gift_0001_20", False), ("DCGSSBOY", False), ("C2", False),
    ("S", False), ("85123A", True), ("22423", True), ("MUG", True),
]
REJECTS = [
    ({"_malformed": "9 fields where the layout has 8"}, "malformed_line", "9 fields where the layout has 8"),
    ({"invoice_no": " "}, "missing_value", "InvoiceNo is empty"),
    ({"quantity": ""}, "missing_value", "Quantity is empty"),
    ({"invoice_date": None}, "missing_value", "InvoiceDate is empty"),
    ({"unit_price": ""}, "missing_value", "UnitPrice is empty"),
    ({"quantity": "six"}, "invalid_quantity", 'Quantity ["six"] is not a whole number'),
    ({"quantity": "2.5"}, "invalid_quantity", 'Quantity ["2.5"] is not a whole number'),
    ({"unit_price": "abc"}, "invalid_price", 'UnitPrice ["abc"] is not a number'),
    ({"invoice_date": "01.12.2010 08:26"}, "invalid_date", 'InvoiceDate ["01.12.2010 08:26"] does not match'),
    ({"quantity": "0"}, "zero_quantity", "quantity is 0"),
    ({"unit_price": "0"}, "non_positive_price", "unit price 0 on a sale"),
    ({"unit_price": "0.0", "quantity": "-3"}, "non_positive_price", "unit price 0 on a return or stock adjustment"),
    ({"unit_price": "-11062.06"}, "non_positive_price", "negative unit price -11062.06"),
    ({"quantity": "1000000000"}, "absurd_quantity", "quantity 1000000000 is beyond the limit of 1,000,000"),
    ({"unit_price": "5000000"}, "absurd_price", "unit price 5000000.0000 is beyond the limit"),
    ({"invoice_date": "2099-01-01 10:00:00"}, "implausible_date", "invoice date 2099-01-01 is before 1990-01-01"),
    ({"invoice_date": "1970-01-01 10:00:00"}, "implausible_date", "invoice date 1970-01-01"),
]


@pytest.fixture(scope="module")
def one_batch(spark):
    """Every single-line case below, classified together in one DataFrame (one Spark job).

    Each case gets its own description, so no two cases are duplicates of each other."""
    cases = {}
    for raw, _ in CUSTOMER_IDS:
        cases[("customer", raw)] = {"customer_id": raw}
    for invoice, quantity, _ in CANCELLATIONS:
        cases[("cancellation", invoice, quantity)] = {"invoice_no": invoice, "quantity": quantity}
    for code, _ in PRODUCT_CODES:
        cases[("code", code)] = {"stock_code": code}
    for index, (change, _, _) in enumerate(REJECTS):
        cases[("reject", index)] = change
    rows = [{**GOOD, "description": f"CASE {i}", **change, "_line_id": f"case{i}"}
            for i, change in enumerate(cases.values())]
    results = {r["_line_id"]: r for r in classified(spark, rows).collect()}
    return {label: results[f"case{i}"] for i, label in enumerate(cases)}


@pytest.mark.parametrize("raw, clean", CUSTOMER_IDS)
def test_customer_id_is_a_clean_string_or_null(one_batch, raw, clean):
    line = one_batch[("customer", raw)]
    assert line["reject_reason"] is None
    assert line["_customer_id"] == clean


def test_lines_without_customer_are_valid_sales(spark):
    assert reasons(spark, [{**GOOD, "customer_id": ""}]) == [(None, None)]
    assert to_orders(classified(spark, [{**GOOD, "customer_id": ""}])).first()["has_customer"] is False


@pytest.mark.parametrize("invoice, quantity, cancellation", CANCELLATIONS)
def test_cancellations_and_returns_are_kept_and_flagged(one_batch, invoice, quantity, cancellation):
    line = one_batch[("cancellation", invoice, quantity)]
    assert line["reject_reason"] is None
    assert line["_is_cancellation"] is cancellation
    assert line["_line_amount"] == Decimal(quantity) * Decimal("2.55")


@pytest.mark.parametrize("code, product", PRODUCT_CODES)
def test_product_and_non_product_codes(one_batch, code, product):
    line = one_batch[("code", code)]
    assert line["reject_reason"] is None and line["_is_product"] is product


@pytest.mark.parametrize("index", range(len(REJECTS)), ids=[f"{r[1]}-{i}" for i, r in enumerate(REJECTS)])
def test_each_reject_reason_with_a_specific_detail(one_batch, index):
    _, reason, detail = REJECTS[index]
    line = one_batch[("reject", index)]
    assert line["reject_reason"] == reason
    assert detail in line["reject_detail"]


def test_first_applicable_reason_wins(spark):
    [(reason, _)] = reasons(spark, [{**GOOD, "quantity": "0", "unit_price": "abc"}])
    assert reason == "invalid_price"


def test_exact_duplicates_in_a_batch_keep_the_first_line(spark):
    rows = [{**GOOD, "_line_id": "a", "_source_file": "file:/l/2010-12-02.csv"},
            {**GOOD, "_line_id": "b", "_source_file": "file:/l/2010-12-01.csv"},
            {**GOOD, "_line_id": "c", "_source_file": "file:/l/2010-12-01.csv"},
            {**GOOD, "quantity": "7", "_line_id": "d"}]
    result = {r["_line_id"]: (r["reject_reason"], r["reject_detail"]) for r in classified(spark, rows).collect()}
    assert result["b"] == (None, None) and result["d"] == (None, None)
    assert result["a"] == ("duplicate_line", "exact duplicate of a line kept from file:/l/2010-12-01.csv")
    assert result["c"][0] == "duplicate_line"


def test_duplicate_of_a_line_already_in_silver(spark):
    first = classified(spark, [{**GOOD, "_line_id": "old"}])
    existing = to_orders(first).select("_content_hash", "_line_id", "_source_file")
    later = {r["_line_id"]: r["reject_reason"] for r in
             classified(spark, [{**GOOD, "_line_id": "new"}], existing=existing).collect()}
    assert later == {"new": "duplicate_line"}
    # the same line replayed (same identity) is not a duplicate of itself
    replay = classified(spark, [{**GOOD, "_line_id": "old"}], existing=existing).first()
    assert replay["reject_reason"] is None


def test_only_lines_whose_content_repeats_are_compared_and_the_verdicts_are_those_of_comparing_all(spark):
    # Repeats within the batch (valid and not), of a kept line, a kept line replayed, and lines
    # seen once: the same verdicts as ordering every line within its content.
    rows = [{**GOOD, "_line_id": "a", "_source_file": "file:/l/2.csv"}, {**GOOD, "_line_id": "b"},
            {**GOOD, "quantity": "0", "_line_id": "c"}, {**GOOD, "quantity": "0", "_line_id": "d"},
            {**GOOD, "quantity": "3", "_line_id": "kept"}, {**GOOD, "quantity": "4", "_line_id": "again"},
            {**GOOD, "quantity": "5", "_line_id": "e"}, {**GOOD, "quantity": "x", "_line_id": "f"}]
    earlier = classified(spark, [{**GOOD, "quantity": "3", "_line_id": "kept"},
                                 {**GOOD, "quantity": "4", "_line_id": "first"}])
    existing = to_orders(earlier).select("_content_hash", "_line_id", "_source_file")
    how = (load_profile("uci"), Settings(), cleaning_rules())  # the profile, settings and rules classify applies
    every_line = with_reject_details(classify(bronze_frame(spark, [dict(r) for r in rows]), *how), *how)

    def verdicts(marked):
        return sorted((r["_line_id"], r["reject_reason"], r["reject_detail"]) for r in marked.collect())

    first_load = verdicts(mark_duplicates(every_line))
    assert verdicts(classified(spark, rows)) == first_load, "nothing kept before: the batch compared with itself"
    assert ("again", None) in [(i, r) for i, r, _ in first_load], "a repeat of a kept line only"
    compared_all = verdicts(mark_duplicates(every_line, existing))
    assert verdicts(classified(spark, rows, existing=existing)) == compared_all
    with_key = to_orders(earlier).select("_content_hash", "_content_key", "_line_id", "_source_file")
    assert verdicts(classified(spark, rows, existing=with_key)) == compared_all, "kept lines found by their stored key"
    bronze = bronze_frame(spark, [dict(r) for r in rows])
    assert verdicts(all_lines(judge(bronze, existing, *how, hold, max_shared=1))) == compared_all, \
        "more shared contents than the limit: same"
    assert [(i, r) for i, r, _ in compared_all] == [
        ("a", None), ("again", "duplicate_line"), ("b", "duplicate_line"), ("c", "zero_quantity"),
        ("d", "zero_quantity"), ("e", None), ("f", "invalid_quantity"), ("kept", None)]


def test_an_empty_batch_has_no_lines_whatever_was_kept_before(spark):
    existing = to_orders(classified(spark, [GOOD])).select("_content_hash", "_line_id", "_source_file",
                                                           "_file_fingerprint")
    for kept in (existing, existing.limit(0)):
        verdicts = judge(bronze_frame(spark, []), kept, load_profile("uci"), Settings(), cleaning_rules(), hold)
        assert (verdicts.lines, verdicts.kept.count(), verdicts.rejected.count()) == (0, 0, 0)


def test_invalid_lines_are_not_deduplicated_against_valid_ones(spark):
    rows = [{**GOOD, "quantity": "0", "_line_id": "a"}, {**GOOD, "quantity": "0", "_line_id": "b"}]
    assert [r for r, _ in reasons(spark, rows)] == ["zero_quantity", "zero_quantity"]


def test_an_earlier_rejected_line_with_the_same_content_does_not_make_a_valid_one_a_duplicate(spark):
    # The same words can be rejected in one file and valid in another (e.g. a date beyond the day
    # the first file was ingested): only valid lines count as earlier occurrences.
    lines = spark.createDataFrame(
        [("h", "implausible_date", "too late", "2010-12-01", "file:/l/a.csv", "a"),
         ("h", None, None, "2010-12-02", "file:/l/b.csv", "b"),
         ("h", None, None, "2010-12-03", "file:/l/c.csv", "c")],
        "_content_hash string, reject_reason string, reject_detail string, _ingested_at string, "
        "_source_file string, _line_id string")
    existing = spark.createDataFrame([], "_content_hash string, _line_id string, _source_file string")
    result = {r["_line_id"]: (r["reject_reason"], r["reject_detail"])
              for r in mark_duplicates(lines, existing).collect()}
    assert result == {"a": ("implausible_date", "too late"), "b": (None, None),
                      "c": ("duplicate_line", "exact duplicate of a line kept from file:/l/b.csv")}


def test_every_line_lands_in_exactly_one_table_unchanged(spark):
    rows = [GOOD, {**GOOD, "quantity": "x"}, {**GOOD, "unit_price": "0"}, GOOD]
    marked = classified(spark, rows)
    orders, quarantine = to_orders(marked), to_quarantine(marked)
    assert orders.count() + quarantine.count() == 4
    ids = [r["_line_id"] for r in orders.select("_line_id").collect()] + \
          [r["_line_id"] for r in quarantine.select("_line_id").collect()]
    assert sorted(ids) == ["id0", "id1", "id2", "id3"]
    bronze_columns = table("transactions_raw").spec().names
    assert quarantine.columns == bronze_columns + ["reject_reason", "reject_detail"]
    quarantined = {r["_line_id"]: r for r in quarantine.collect()}
    assert quarantined["id1"]["quantity"] == "x"  # kept exactly as it arrived


def test_amount_layout_without_invoice_number(spark):
    profile = parse_profile({"delimiter": ";", "timestamp_formats": ["dd/MM/yyyy HH:mm"],
                             "columns": {"when": "invoice_date", "who": "customer_id", "qty": "quantity",
                                         "total": "line_amount"}}, TRANSACTIONS, "shop.yaml")
    rows = [dict(invoice_date="02/01/2011 10:15", customer_id="42", quantity="3", line_amount="19.50"),
            dict(invoice_date="02/01/2011 16:00", customer_id="42", quantity="-1", line_amount="-6.50"),
            dict(invoice_date="02/01/2011 16:00", customer_id="", quantity="2", line_amount="4")]
    lines = to_orders(classified(spark, rows, profile=profile)).orderBy("line_amount").collect()
    assert [(r["invoice_no"], r["unit_price"], r["line_amount"], r["is_cancellation"]) for r in lines] == [
        ("42-20110102", Decimal("6.5000"), Decimal("-6.5000"), True),
        ("guest-20110102", Decimal("2.0000"), Decimal("4.0000"), False),
        ("42-20110102", Decimal("6.5000"), Decimal("19.5000"), False)]
    assert all(r["stock_code"] is None and r["is_product"] and r["country"] == "Unknown" for r in lines)


def test_the_default_layouts_timestamps_read_exactly_as_their_pattern_reads_them(spark):
    """The cast that reads the default pattern's shape gives what the pattern gives: the same instant
    for every valid text, none for every invalid one, and the other formats for texts of another shape."""
    draw = random.Random(7)
    parts = ([0, 1, 1999, 2000, 2011, 2012, 2100, 9999], range(0, 14), range(0, 33), range(0, 25), (0, 1, 59, 60),
             (0, 30, 59, 60))
    texts = [f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}"
             for y, mo, d, h, mi, s in (tuple(draw.choice(list(p)) for p in parts) for _ in range(3000))]
    texts += ["2012-02-29 00:00:00", "2011-02-29 00:00:00", "2010-12-01 08:26:00\r", "2010-12-01 08:26:00\n",
              "2010-12-01T08:26:00", " 2010-12-01 08:26:00 ", "2010-12-01 08:26:00.5", "+2010-12-01 08:26:00",
              "2010-12-1 08:26:00", "\uff12010-12-01 08:26:00", "12/1/2010 8:26", "2010-12-01 08:26"]
    frame = spark.createDataFrame([(t,) for t in texts], "text string")
    formats = (ISO_PATTERN, "M/d/yyyy H:mm")
    read = frame.select("text", parse_timestamp(F.col("text"), formats).alias("read"), F.coalesce(
        *[F.try_to_timestamp(F.trim("text"), F.lit(f)) for f in formats]).alias("by_pattern"))
    # Compared in Spark: year 0 has no Python datetime.
    assert read.where(~F.col("read").eqNullSafe(F.col("by_pattern"))).select("text").collect() == []
    assert 0 < read.where(F.col("read").isNotNull()).count() < len(texts)
    assert read.where(F.col("text") == "12/1/2010 8:26").first()["read"] == dt.datetime(2010, 12, 1, 8, 26)


def test_processed_at_is_the_instant_whatever_the_drivers_time_zone(spark, monkeypatch):
    import time

    from pyspark.sql import functions as F

    from customer_segmentation.silver.orders import quality_row

    marked = classified(spark, [GOOD, {**GOOD, "quantity": "x"}])
    rejected = marked.where("reject_reason IS NOT NULL")
    monkeypatch.setenv("TZ", "America/New_York")  # Spark reads a naive datetime in this zone
    time.tzset()
    try:
        row = quality_row(rejected, 2, "run", 0).select(
            F.col("processed_at").cast("long").alias("s"), "lines_in", "lines_rejected").first()
    finally:
        monkeypatch.undo()
        time.tzset()
    assert abs(row["s"] - time.time()) < 120 and (row["lines_in"], row["lines_rejected"]) == (2, 1)


def test_a_layout_without_line_identity_keeps_identical_lines_and_rejects_a_file_delivered_again(spark):
    from customer_segmentation.silver.quarantine import mark_redelivered_files

    same = dict(GOOD)
    later = {"_ingested_at": INGESTED + dt.timedelta(hours=1)}  # the file sent again, an hour later
    rows = [{**same, "_source_file": "file:/l/day1.csv", "_line_id": "a1", "_file_fingerprint": "F"},
            {**same, "_source_file": "file:/l/day1.csv", "_line_id": "a2", "_file_fingerprint": "F"},
            {**same, "_source_file": "file:/l/day1-again.csv", "_line_id": "b1", "_file_fingerprint": "F", **later},
            {**same, "_source_file": "file:/l/day1-again.csv", "_line_id": "b2", "_file_fingerprint": "F", **later},
            {**same, "_source_file": "file:/l/day2.csv", "_line_id": "c1", "_file_fingerprint": "G"}]
    bronze = bronze_frame(spark, rows)
    classified = classify(bronze, load_profile("uci"), Settings(), cleaning_rules())
    existing = spark.createDataFrame([("H", "file:/l/day0.csv")], "_file_fingerprint string, _source_file string")
    marked = {r["_line_id"]: (r["reject_reason"], r["reject_detail"])
              for r in mark_redelivered_files(classified, existing).collect()}
    assert marked["a1"] == marked["a2"] == marked["c1"] == (None, None), "two identical purchases stay two"
    assert marked["b1"] == marked["b2"] == (
        "duplicate_line", "the same file was already delivered as file:/l/day1.csv")
    earlier = spark.createDataFrame([("G", "file:/l/day2-first.csv")], "_file_fingerprint string, _source_file string")
    again = {r["_line_id"]: r["reject_reason"] for r in mark_redelivered_files(classified, earlier).collect()}
    assert again["c1"] == "duplicate_line", "delivered in an earlier batch"


def test_the_key_decides_what_a_duplicate_is(spark):
    from customer_segmentation.silver.quarantine import content_hash

    rows = [dict(GOOD), {**GOOD, "description": "ANOTHER TEXT"}]
    bronze = bronze_frame(spark, rows)
    keyed = bronze.select(content_hash(TRANSACTIONS.columns, ("invoice_no", "stock_code")).alias("h")).collect()
    full = bronze.select(content_hash(TRANSACTIONS.columns).alias("h")).collect()
    assert keyed[0]["h"] == keyed[1]["h"] and full[0]["h"] != full[1]["h"]
    uci = load_profile("uci")
    everything = bronze.select(content_hash(TRANSACTIONS.columns, uci.key).alias("h")).collect()
    assert everything == full, "the UCI key is every field: the same hashes as before keys existed"
