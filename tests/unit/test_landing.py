"""How landing lines become bronze rows: splitting, headers by name, malformed lines, rescued data."""

import json

import pytest
import yaml
from pyspark.sql import functions as F

from customer_segmentation.ingest.lines import parse_lines
from customer_segmentation.ingest.source_profiles import PROFILE_DIR, TRANSACTIONS, load_profile, parse_profile

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"


def bronze_rows(spark, files: dict[str, list], profile=None):
    """files: name -> lines, as text or as the bytes the reader would give (Spark keeps them as they are)."""
    lines = [(bytearray(line if isinstance(line, bytes) else line.encode()), name)
             for name, content in files.items() for line in content]
    df = (spark.createDataFrame(lines, "value binary, _source_file string")
          .withColumn("value", F.col("value").cast("string")).withColumn("_ingested_at", F.current_timestamp()))
    rows = parse_lines(df, profile or load_profile("uci"), TRANSACTIONS).orderBy("_source_file", "_raw_line")
    return [r.asDict() for r in rows.collect()]


def uci_with(**keys):
    """The built-in UCI profile with some keys changed."""
    document = yaml.safe_load((PROFILE_DIR / "uci.yaml").read_text(encoding="utf-8"))
    return parse_profile({**document, **keys}, TRANSACTIONS, "uci_variant.yaml")


def test_header_is_not_data_and_fields_map_by_name(spark):
    rows = bronze_rows(spark, {"a.csv": [
        HEADER, "536365,85123A,WHITE HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom"]})
    assert len(rows) == 1
    row = rows[0]
    assert (row["invoice_no"], row["stock_code"], row["quantity"], row["customer_id"]) == (
        "536365", "85123A", "6", "17850.0")
    assert row["line_amount"] is None and row["_malformed"] is None and row["_rescued_data"] is None
    assert row["_raw_line"].startswith("536365,85123A") and row["_source_profile"] == "uci"


def test_headers_are_found_in_any_case_anywhere_in_a_file(spark):
    # Files joined together repeat their header; a line is lowered for the test only when it holds
    # the names' rarest letter in either case (here the q of Quantity).
    line = "536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom"
    rows = bronze_rows(spark, {"a.csv": [HEADER.upper(), line, HEADER.lower(), line.replace("536365", "536366"),
                                         HEADER.replace("Quantity", "QuAnTiTy")]})
    assert [(r["invoice_no"], r["_malformed"]) for r in rows] == [("536365", None), ("536366", None)]


def test_quoted_fields_keep_delimiters_and_doubled_quotes(spark):
    line = '536381,82567,"AIRLINE LOUNGE,METAL SIGN",2,2010-12-01 09:41:00,2.1,15311.0,United Kingdom'
    line2 = '536477,22041,"RECORD FRAME 7"" SINGLE SIZE ",48,2010-12-01 12:27:00,2.1,16210.0,United Kingdom'
    rows = bronze_rows(spark, {"a.csv": [HEADER, line, line2]})
    assert [r["description"] for r in rows] == ["AIRLINE LOUNGE,METAL SIGN", 'RECORD FRAME 7" SINGLE SIZE ']
    assert all(r["_malformed"] is None for r in rows)


def test_reordered_columns_are_found_by_header_name(spark):
    header = "Country,CustomerID,UnitPrice,InvoiceDate,Quantity,Description,StockCode,InvoiceNo"
    rows = bronze_rows(spark, {"b.csv": [header, "France,12345.0,1.5,2011-01-02 10:00:00,3,MUG,22222,540000"]})
    assert (rows[0]["invoice_no"], rows[0]["country"], rows[0]["quantity"]) == ("540000", "France", "3")
    assert rows[0]["_malformed"] is None


def test_extra_column_is_rescued_not_lost(spark):
    header = HEADER + ",Channel"
    rows = bronze_rows(spark, {"c.csv": [
        header, "536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom,web"]})
    assert rows[0]["_malformed"] is None
    assert json.loads(rows[0]["_rescued_data"]) == [{"column": "channel", "value": "web"}]


@pytest.mark.parametrize("line, reason", [
    ("536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0", "7 fields where the layout has 8"),
    ("536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0,UK,extra", "9 fields where the layout has 8"),
    ('536365,85123A,"HEART,6,2010-12-01 08:26:00,2.55,17850.0,UK', "unbalanced quotes"),
    ("536365,85123A,H\ufffdRT,6,2010-12-01 08:26:00,2.55,17850.0,UK",
     "replacement character U+FFFD at character 15: the text was damaged before it arrived"),
])
def test_malformed_lines_say_why(spark, line, reason):
    rows = bronze_rows(spark, {"d.csv": [HEADER, line]})
    assert rows[0]["_malformed"] == reason and rows[0]["_raw_line"] == line


def test_surplus_fields_are_rescued(spark):
    rows = bronze_rows(spark, {"d.csv": [HEADER, "1,2,3,4,5,6,7,8,surplus"]})
    assert json.loads(rows[0]["_rescued_data"]) == [{"value": "surplus"}]  # no column name: beyond the layout


def test_blank_lines_and_byte_order_mark_are_not_data(spark):
    rows = bronze_rows(spark, {"e.csv": ["\ufeff" + HEADER, "", "  ", "1,2,3,4,5,6,7,8"]})
    assert len(rows) == 1 and rows[0]["_malformed"] is None


def test_file_without_header_is_read_by_declared_position(spark):
    rows = bronze_rows(spark, {"f.csv": ["536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom"]})
    assert rows[0]["stock_code"] == "85123A" and rows[0]["country"] == "United Kingdom"


def test_whitespace_delimiter_without_header(spark):
    profile = parse_profile({"delimiter": "whitespace", "header": False,
                             "columns": {"day": "invoice_date", "client": "customer_id", "qty": "quantity",
                                         "total": "line_amount"}}, TRANSACTIONS, "ws.yaml")
    rows = bronze_rows(spark, {"w.txt": ["  02/01/2011   C42 \t 3  19.50 ", '03/01/2011 "C 43" 1 5']}, profile)
    assert [(r["invoice_date"], r["customer_id"], r["quantity"], r["line_amount"]) for r in rows] == [
        ("02/01/2011", "C42", "3", "19.50"), ("03/01/2011", "C 43", "1", "5")]
    assert all(r["_malformed"] is None for r in rows)


def test_identical_lines_get_distinct_stable_ids(spark):
    line = "536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom"
    first = bronze_rows(spark, {"g.csv": [HEADER, line, line]})
    again = bronze_rows(spark, {"g.csv": [HEADER, line, line]})
    assert len({r["_line_id"] for r in first}) == 2
    assert {r["_line_id"] for r in first} == {r["_line_id"] for r in again}


def test_invalid_utf8_never_reaches_a_string_column_and_its_bytes_are_kept(spark):
    line = b"536365,85123A,WHITE \xff\xfeHEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom"
    [row] = bronze_rows(spark, {"a.csv": [HEADER, line]})
    assert row["_malformed"].startswith("byte 20 (0xFF) is not valid UTF-8")
    assert bytes(row["_raw_bytes"]) == line, "the line byte for byte"
    assert row["_raw_line"] == line.decode("utf-8", errors="replace")
    assert all(v.encode("utf-8") for v in row.values() if isinstance(v, str)), "every string is valid UTF-8"


@pytest.mark.parametrize("encoding", ["utf-8", "windows-1252", "utf-16"])
def test_every_line_is_kept_byte_for_byte_and_its_bytes_apart_only_where_its_text_is_not_them(spark, encoding):
    text = ["536365,85123A,WHITE HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
            "536366,22633,CAFÉ SIGN £3,6,2010-12-01 08:28:00,1.85,17850.0,España"]
    # A UTF-16 file is split at its newline: a Windows line end leaves a carriage return in the line.
    end = "\r" if encoding == "utf-16" else ""
    lines = [(line + end).encode("utf-16-le" if encoding == "utf-16" else encoding) for line in [HEADER, *text]]
    if encoding == "utf-8":
        lines += [b"536367,22632,WHITE \xff\xfeHEART,6,2010-12-01 08:29:00,2.1,17850.0,UK",
                  b"536368,22631,HEART\x00,6,2010-12-01 08:30:00,2.1,17850.0,UK"]
    rows = bronze_rows(spark, {"a.csv": lines}, None if encoding == "utf-8" else uci_with(encoding=encoding))
    kept = spark.createDataFrame([(r["_raw_line"], r["_raw_bytes"]) for r in rows],
                                 "_raw_line string, _raw_bytes binary")
    replayed = kept.select(F.coalesce("_raw_bytes", F.encode("_raw_line", "UTF-8")).alias("line")).collect()
    assert sorted(bytes(r["line"]) for r in replayed) == sorted(lines[1:]), "every line as it arrived"
    # Apart only where the text in UTF-8 is not the bytes: another encoding, bytes not valid in it, a NUL.
    expected = {"utf-8": [False, False, True, True], "windows-1252": [False, True], "utf-16": [True, True]}
    assert sorted(r["_raw_bytes"] is not None for r in rows) == expected[encoding]


def test_the_byte_offset_counts_bytes_of_the_valid_text_before_it(spark):
    line = "536365,85123A,CAFÉ ".encode() + b"\xc3(" + b",6,2010-12-01 08:26:00,2.55,17850.0,UK"
    [row] = bronze_rows(spark, {"a.csv": [HEADER, line]})
    assert row["_malformed"].startswith("byte 20 (0xC3) is not valid UTF-8"), row["_malformed"]


def test_a_nul_byte_is_quarantined_and_kept_out_of_the_text(spark):
    line = b"536365,85123A,HEART\x00,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom"
    [row] = bronze_rows(spark, {"a.csv": [HEADER, line]})
    assert row["_malformed"].startswith("NUL byte at character 19")
    assert "\u0000" not in row["_raw_line"] and "\u0000" not in row["description"]
    assert bytes(row["_raw_bytes"]) == line


@pytest.mark.parametrize("encoding", ["windows-1252", "latin-1"])
def test_a_profile_names_a_single_byte_encoding(spark, encoding):
    profile = uci_with(encoding=encoding)
    text = "536365,85123A,CAFÉ SIGN £3,6,2010-12-01 08:26:00,2.55,17850.0,España"
    [row] = bronze_rows(spark, {"a.csv": [HEADER.encode(encoding), text.encode(encoding)]}, profile)
    assert (row["description"], row["country"], row["_malformed"]) == ("CAFÉ SIGN £3", "España", None)
    if encoding == "windows-1252":
        [euro] = bronze_rows(spark, {"b.csv": [HEADER.encode(encoding), text.replace("£", "€").encode(encoding)]},
                             profile)
        assert euro["description"] == "CAFÉ SIGN €3", "0x80 is the euro sign in Windows-1252"


def test_a_utf16_line_is_decoded_when_the_profile_says_so(spark):
    profile = parse_profile({"encoding": "utf-16", "columns": {"InvoiceNo": "invoice_no", "Quantity": "quantity",
                                                               "InvoiceDate": "invoice_date", "UnitPrice": "unit_price",
                                                               "CustomerID": "customer_id"}}, TRANSACTIONS, "u.yaml")
    header = "\ufeffInvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID\r"
    [row] = bronze_rows(spark, {"u.csv": [header.encode("utf-16-le"),
                                          "536365,6,2010-12-01 08:26:00,2.55,17850.0\r".encode("utf-16-le")]}, profile)
    assert (row["invoice_no"], row["customer_id"], row["_malformed"]) == ("536365", "17850.0", None)


def test_escapes_in_the_text_stay_text(spark):
    line = "536365,85123A,HEART \\ud800 \\u0000,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom"
    [row] = bronze_rows(spark, {"a.csv": [HEADER, line]})
    assert row["_malformed"] is None and row["description"] == "HEART \\ud800 \\u0000", "never decoded as escapes"


def test_a_file_has_the_same_fingerprint_under_another_name_and_line_order(spark):
    lines = [HEADER, "1,2,3,4,5,6,7,8", "1,2,3,4,5,6,7,9", "1,2,3,4,5,6,7,9"]
    rows = bronze_rows(spark, {"a.csv": lines, "b.csv": [lines[0]] + lines[:0:-1], "c.csv": lines[:3]})
    fingerprints = {r["_source_file"]: r["_file_fingerprint"] for r in rows}
    assert fingerprints["a.csv"] == fingerprints["b.csv"] != fingerprints["c.csv"]
    assert len({(r["_source_file"], r["_file_fingerprint"]) for r in rows}) == 3, "one fingerprint per file"
