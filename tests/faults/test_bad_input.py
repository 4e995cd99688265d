"""Bad files and bad lines: the run completes, every bad line is quarantined with a precise reason,
and bronze lines = orders + quarantine, exactly."""

import pytest

from customer_segmentation.ops.jobs import run_job

pytestmark = pytest.mark.faults

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
GOOD = [
    "540001,22423,REGENCY CAKESTAND,2,2011-01-04 10:00:00,12.75,13047.0,United Kingdom",
    "540001,85123A,WHITE HEART,6,2011-01-04 10:00:00,2.55,13047.0,United Kingdom",
    "540002,22423,REGENCY CAKESTAND,1,2011-01-05 11:00:00,12.75,12583.0,France",
]
BAD = {
    "540003,22423,SHORT LINE,1,2011-01-05 11:00:00,12.75,12583.0": (
        "malformed_line", "7 fields where the layout has 8"),
    "540003,22423,CAKESTAND,two,2011-01-05 11:00:00,12.75,12583.0,France": ("invalid_quantity", 'Quantity ["two"]'),
    "540003,22423,CAKESTAND,1,2011-13-45 99:00:00,12.75,12583.0,France": ("invalid_date", "InvoiceDate"),
    "540003,22423,CAKESTAND,1000000000,2011-01-05 11:00:00,12.75,12583.0,France": (
        "absurd_quantity", "quantity 1000000000 is beyond the limit of 1,000,000"),
    "540003,22423,CAKESTAND,1,2099-01-05 11:00:00,12.75,12583.0,France": ("implausible_date", "2099-01-05"),
    "540003,22423,CAKESTAND,1,2011-01-05 11:00:00,,12583.0,France": ("missing_value", "UnitPrice is empty"),
}


@pytest.fixture(scope="module")
def bad_landing(tmp_path_factory):
    landing = tmp_path_factory.mktemp("bad") / "transactions"
    landing.mkdir()
    day = "\n".join([HEADER, *GOOD, *BAD]) + "\n"
    (landing / "2011-01-05.csv").write_text(day)
    reordered = "Country,CustomerID,UnitPrice,InvoiceDate,Quantity,Description,StockCode,InvoiceNo\n" \
                "Spain,12600.0,3.5,2011-01-06 09:00:00,4,MUG,21000,540010\n"
    (landing / "2011-01-06.csv").write_text(reordered)
    (landing / "2011-01-07.csv").write_text(
        HEADER + ",Channel\n540011,21001,JAR,3,2011-01-07 09:00:00,1.5,12601.0,EIRE,web\n")
    (landing / "empty.csv").write_text("")
    (landing / "header_only.csv").write_text(HEADER + "\n")
    latin1 = (HEADER + "\n540012,21002,CAFÉ SIGN,1,2011-01-07 10:00:00,4.0,12602.0,France\n"
              "540012,21003,TEA SET,1,2011-01-07 10:00:00,9.0,12602.0,France\n").encode("latin-1")
    (landing / "2011-01-07-latin1.csv").write_bytes(latin1)
    return landing


@pytest.fixture(scope="module")
def bad_job(spark, bad_landing, tmp_path_factory, session_state):
    from customer_segmentation.core.settings import Settings

    root = tmp_path_factory.mktemp("bad_state")
    settings = Settings(bronze_schema="bad_bronze", silver_schema="bad_silver", gold_schema="bad_gold",
                        landing_path=str(bad_landing), checkpoint_root=str(root / "checkpoints"),
                        state_root=str(session_state))
    run_job(spark, settings, ("bronze", "silver", "gold_features"))
    # The same file delivered again under another name, picked up by the next run.
    (bad_landing / "2011-01-05-resent.csv").write_bytes((bad_landing / "2011-01-05.csv").read_bytes())
    run_job(spark, settings, ("bronze", "silver", "gold_features"))
    return settings


def test_every_bad_line_has_its_precise_reason(spark, bad_job):
    quarantine = spark.table(bad_job.tables.orders_quarantine).collect()
    by_line = {}
    for row in quarantine:
        by_line.setdefault((row["_source_file"].rsplit("/", 1)[-1], row["_raw_line"]), []).append(row)
    for file in ("2011-01-05.csv", "2011-01-05-resent.csv"):
        for line, (reason, detail) in BAD.items():
            [row] = by_line[(file, line)]
            assert row["reject_reason"] == reason and detail in row["reject_detail"], (file, line)
    # The resent file's good lines are exact duplicates of the first delivery.
    for line in GOOD:
        [row] = by_line[("2011-01-05-resent.csv", line)]
        assert row["reject_reason"] == "duplicate_line"
        assert row["reject_detail"].endswith("/2011-01-05.csv")
    latin = [r for r in quarantine if r["_source_file"].endswith("latin1.csv")]
    assert [(r["reject_reason"], r["reject_detail"]) for r in latin] == [("malformed_line", "not valid UTF-8 text")]
    assert len(quarantine) == 2 * len(BAD) + len(GOOD) + 1


def test_reordered_and_extra_columns_are_read_by_name(spark, bad_job):
    orders = {r["invoice_no"]: r for r in spark.table(bad_job.tables.orders).collect()}
    assert orders["540010"]["country"] == "Spain" and orders["540010"]["quantity"] == 4
    assert orders["540011"]["customer_id"] == "12601"
    raw = spark.table(bad_job.tables.transactions_raw).where("invoice_no = '540011'").first()
    assert raw["_rescued_data"] == '[{"column":"channel","value":"web"}]'
    assert orders["540012"]["description"] == "TEA SET", "the valid line of a badly encoded file is kept"


def test_reconciliation_holds_exactly_and_empty_files_add_nothing(spark, bad_job, bad_landing):
    tables = bad_job.tables
    bronze = spark.table(tables.transactions_raw)
    expected_lines = 2 * (len(GOOD) + len(BAD)) + 1 + 1 + 2
    assert bronze.count() == expected_lines
    assert spark.table(tables.orders).count() + spark.table(tables.orders_quarantine).count() == expected_lines
    files = {r[0].rsplit("/", 1)[-1] for r in bronze.select("_source_file").distinct().collect()}
    assert "empty.csv" not in files and "header_only.csv" not in files
    log = spark.table(tables.quality_log).collect()
    assert sum(r["lines_in"] for r in log) == expected_lines


def test_absurd_values_are_quarantined_not_counted(spark, bad_job):
    features = {r["customer_id"]: r for r in spark.table(bad_job.tables.customer_features).collect()}
    # 12583 has one valid line (1 x 12.75); its absurd and future lines are not counted.
    assert features["12583"]["monetary"] == 12.75
    assert max(r["last_purchase_date"].year for r in features.values()) == 2011
