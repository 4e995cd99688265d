"""Bad files and bad lines: the run completes, every bad line is quarantined with a precise reason,
and bronze lines = orders + quarantine, exactly."""

import pytest
from pyspark.sql import functions as F

from customer_segmentation.ops.jobs import run_job
from testkit import SMALL_JOB

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
    for name, content in ENCODED.items():
        (landing / name).write_bytes(content)
    return landing


# Files nobody here wrote: bytes some readers refuse, among good lines.
INVALID_UTF8 = b"540020,21010,WHITE \xff\xfeHEART,2,2011-01-08 10:00:00,2.5,12610.0,United Kingdom"
NUL_LINE = b"540023,21013,HEART\x00,1,2011-01-08 13:00:00,2.0,12613.0,United Kingdom"
EXCEL_LINE = "540022,21012,£5 CAFÉ TIN,1,2011-01-08 12:00:00,5.0,12612.0,France".encode("cp1252")
ENCODED = {
    "2011-01-08-invalid.csv": b"\n".join([
        HEADER.encode(), INVALID_UTF8, b"540020,21011,MUG,1,2011-01-08 10:00:00,1.5,12610.0,United Kingdom"]) + b"\n",
    "2011-01-08-bom.csv": ("\ufeff" + HEADER + "\n540021,21011,MUG,3,2011-01-08 11:00:00,1.5,12611.0,EIRE\n").encode(),
    "2011-01-08-utf16.csv": (
        HEADER + "\r\n540024,21014,JUG,1,2011-01-08 14:00:00,3.0,12614.0,Spain\r\n").encode("utf-16"),
    "2011-01-08-excel.csv": b"\r\n".join([HEADER.encode(), EXCEL_LINE,
                                            b"540022,21011,MUG,2,2011-01-08 12:00:00,1.5,12612.0,France"]) + b"\r\n",
    "2011-01-08-nul.csv": b"\n".join([HEADER.encode(), NUL_LINE]) + b"\n",
}


@pytest.fixture(scope="module")
def bad_job(spark, bad_landing, tmp_path_factory, session_state):
    from customer_segmentation.core.settings import Settings

    root = tmp_path_factory.mktemp("bad_state")
    settings = Settings(bronze_schema="bad_bronze", silver_schema="bad_silver", gold_schema="bad_gold",
                        landing_path=str(bad_landing), checkpoint_root=str(root / "checkpoints"),
                        state_root=str(session_state), experiment_name="bad_experiment", model_name="bad_model")
    run_job(spark, settings, ("bronze", "silver", "gold_features"))
    # The same file delivered again under another name, picked up by the next run: the whole job,
    # so that every table of the lakehouse holds what the bad bytes became.
    (bad_landing / "2011-01-05-resent.csv").write_bytes((bad_landing / "2011-01-05.csv").read_bytes())
    run_job(spark, settings.replace(**SMALL_JOB))
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
    assert [(r["reject_reason"], r["reject_detail"][:35]) for r in latin] == [
        ("malformed_line", "byte 16 (0xC9) is not valid UTF-8 (")]
    assert len(quarantine) == 2 * len(BAD) + len(GOOD) + 1 + ENCODED_REJECTS


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
    expected_lines = 2 * (len(GOOD) + len(BAD)) + 1 + 1 + 2 + ENCODED_LINES
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


# The invalid byte; the UTF-16 file read as UTF-8, split at its 0x0D and 0x0A bytes: its unreadable
# header, its line and three NUL bytes between and after; the £ of the Excel export; the NUL.
ENCODED_REJECTS = 1 + 5 + 1 + 1
ENCODED_LINES = 2 + 1 + 5 + 2 + 1  # bronze lines (the other files' headers are headers)


def test_bytes_that_are_not_valid_text_are_quarantined_with_the_offset_and_kept_exactly(spark, bad_job):
    quarantine = spark.table(bad_job.tables.orders_quarantine)
    by_file = {}
    for row in quarantine.where(F.col("_source_file").contains("2011-01-08")).collect():
        by_file.setdefault(row["_source_file"].rsplit("/", 1)[-1], []).append(row)
    [invalid] = by_file["2011-01-08-invalid.csv"]
    assert invalid["reject_detail"].startswith("byte 19 (0xFF) is not valid UTF-8")
    assert bytes(invalid["_raw_bytes"]) == INVALID_UTF8, "the line exactly as it arrived, replayable"
    [excel] = by_file["2011-01-08-excel.csv"]
    assert excel["reject_detail"].startswith("byte 13 (0xA3) is not valid UTF-8 (a file in another encoding?")
    assert bytes(excel["_raw_bytes"]) == EXCEL_LINE
    [nul] = by_file["2011-01-08-nul.csv"]
    assert nul["reject_detail"].startswith("NUL byte at character 18") and bytes(nul["_raw_bytes"]) == NUL_LINE
    utf16 = by_file["2011-01-08-utf16.csv"]
    assert len(utf16) == 5 and all(r["reject_reason"] == "malformed_line" for r in utf16)
    assert {r["reject_detail"][:28] for r in utf16} == {"byte 0 (0xFF) is not valid U", "NUL byte at character 0: bin"}
    assert "2011-01-08-bom.csv" not in by_file
    orders = {r["invoice_no"]: r for r in spark.table(bad_job.tables.orders).where("invoice_no >= '540020'").collect()}
    assert orders["540021"]["quantity"] == 3, "a byte-order mark is not part of the first column's name"
    assert {"540020", "540022"} <= set(orders), "the good lines of a file with a bad one are kept"


def test_every_table_reads_outside_spark_with_valid_strings(spark, bad_job):
    import pyarrow as pa
    from deltalake import DeltaTable

    checked = []
    for name in bad_job.tables.delta_tables().values():
        if not spark.catalog.tableExists(name):
            continue
        location = spark.sql(f"DESCRIBE DETAIL {name}").first()["location"]
        delta = DeltaTable(location)
        arrow = pa.table(delta.to_pyarrow_dataset().to_table())
        arrow.validate(full=True)  # invalid UTF-8 in a string column fails here
        frame = delta.to_pandas()
        assert list(frame.columns) == spark.table(name).columns and len(frame) == spark.table(name).count(), name
        checked.append(name)
    assert len(checked) >= 15, checked
