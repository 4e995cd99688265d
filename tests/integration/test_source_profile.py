"""The whole job on a second layout, read through a source profile: no invoice numbers, no line
identity, an amount per line, another delimiter; and a UTF-16 export."""

import datetime as dt
from pathlib import Path

import pytest
import yaml

from customer_segmentation.ops.jobs import run_job

PROFILE = {
    "name": "shop_export",
    "description": "semicolon-separated export with a total per line and no invoice numbers",
    "delimiter": ";",
    "header": True,
    "timestamp_formats": ["dd/MM/yyyy HH:mm"],
    "columns": {"Client": "customer_id", "When": "invoice_date", "Sku": "stock_code", "Qty": "quantity",
                "Total": "line_amount", "Nation": "country"},
}
LINES = [
    "Client;When;Sku;Qty;Total;Nation",
    "A1;02/01/2011 10:15;111;3;19.50;France",
    "A1;02/01/2011 16:40;111;-1;-6.50;France",
    "A1;15/03/2011 09:00;222;2;10.00;France",
    "B2;01/06/2011 12:00;111;1;6.50;Spain",
    ";01/06/2011 12:30;111;4;26.00;Spain",
    "B2;01/06/2011 12:00;111;1;6.50;Spain",
    "C3;2011-06-01;111;1;6.50;Spain",
]
TASKS = ("bronze", "silver", "gold_features")


def _settings(tmp_path_factory, session_state, prefix, profile):
    from customer_segmentation.core.settings import Settings

    root = tmp_path_factory.mktemp(prefix)
    path = root / f"{prefix}.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    (root / "landing").mkdir()
    return Settings(bronze_schema=f"{prefix}_bronze", silver_schema=f"{prefix}_silver", gold_schema=f"{prefix}_gold",
                    landing_path=str(root / "landing"), checkpoint_root=str(root / "checkpoints"),
                    state_root=str(session_state), source_profile=str(path))


@pytest.fixture(scope="module")
def shop_job(spark, tmp_path_factory, session_state):
    settings = _settings(tmp_path_factory, session_state, "shop", PROFILE)
    (Path(settings.landing_path) / "export_1.txt").write_text("\n".join(LINES) + "\n")
    run_job(spark, settings, TASKS)
    return settings


def test_features_from_a_second_layout(spark, shop_job):
    feats = {r["customer_id"]: r for r in spark.table(shop_job.tables.customer_features).collect()}
    assert set(feats) == {"A1", "B2"}
    a1 = feats["A1"]
    assert a1["as_of_date"] == dt.date(2011, 6, 2)
    assert (a1["frequency"], a1["gross_revenue"], a1["returns_value"], a1["monetary"]) == (2, 29.5, 6.5, 23.0)
    assert (a1["recency_days"], a1["tenure_days"], a1["main_country"]) == (79, 151, "France")
    # B2 bought the same item for the same amount twice that noon: two purchases, not a duplicate.
    assert (feats["B2"]["monetary"], feats["B2"]["recency_days"]) == (13.0, 1)


def test_second_layout_silver_and_quarantine(spark, shop_job):
    tables = shop_job.tables
    orders = spark.table(tables.orders).collect()
    assert len(orders) == 6
    assert {r["invoice_no"] for r in orders} == {"A1-20110102", "A1-20110315", "B2-20110601", "guest-20110601"}
    assert all(r["unit_price"] is not None and r["description"] is None for r in orders)
    reasons = sorted((r["reject_reason"], r["_raw_line"]) for r in spark.table(tables.orders_quarantine).collect())
    assert reasons == [("invalid_date", "C3;2011-06-01;111;1;6.50;Spain")]


def test_without_line_identity_a_file_landed_again_under_another_name_adds_nothing(spark, shop_job):
    tables = shop_job.tables
    landing = Path(shop_job.landing_path)
    (landing / "export_1_again.txt").write_bytes((landing / "export_1.txt").read_bytes())
    run_job(spark, shop_job, TASKS)
    assert spark.table(tables.orders).count() == 6
    again = spark.table(tables.orders_quarantine).where("_source_file LIKE '%export_1_again.txt'").collect()
    assert len(again) == len(LINES) - 1
    assert {r["reject_reason"] for r in again} == {"duplicate_line", "invalid_date"}
    [first] = {r["_source_file"] for r in spark.table(tables.orders).collect()}
    assert {r["reject_detail"] for r in again if r["reject_reason"] == "duplicate_line"} == {
        f"the same file was already delivered as {first}"}


def test_a_utf16_export_is_read_when_the_profile_names_its_encoding(spark, tmp_path_factory, session_state):
    settings = _settings(tmp_path_factory, session_state, "utf16", {**PROFILE, "encoding": "utf-16"})
    text = "\r\n".join([*LINES[:4], "Zoë;01/06/2011 12:00;111;1;6.50;España"]) + "\r\n"
    (Path(settings.landing_path) / "export.csv").write_bytes(text.encode("utf-16"))
    run_job(spark, settings, ("bronze", "silver"))
    orders = spark.table(settings.tables.orders).collect()
    assert sorted(r["customer_id"] for r in orders) == ["A1", "A1", "A1", "Zoë"]
    assert {r["country"] for r in orders} == {"France", "España"}
    assert spark.table(settings.tables.orders_quarantine).count() == 0
