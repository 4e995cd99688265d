"""The whole job on a second layout, read through a source profile."""

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


@pytest.fixture
def shop_job(spark, make_settings, tmp_path):
    profile = tmp_path / "shop_export.yaml"
    profile.write_text(yaml.safe_dump(PROFILE, sort_keys=False))
    settings = make_settings(source_profile=str(profile))
    landing = Path(settings.landing_path)
    landing.mkdir(parents=True)
    (landing / "export_1.txt").write_text("\n".join(LINES) + "\n")
    run_job(spark, settings, ("bronze", "silver", "gold_features"))
    return settings


def test_features_from_a_second_layout(spark, shop_job):
    feats = {r["customer_id"]: r for r in spark.table(shop_job.tables.customer_features).collect()}
    assert set(feats) == {"A1", "B2"}
    a1 = feats["A1"]
    assert a1["as_of_date"] == dt.date(2011, 6, 2)
    assert (a1["frequency"], a1["gross_revenue"], a1["returns_value"], a1["monetary"]) == (2, 29.5, 6.5, 23.0)
    assert (a1["recency_days"], a1["tenure_days"], a1["main_country"]) == (79, 151, "France")
    assert (feats["B2"]["monetary"], feats["B2"]["recency_days"]) == (6.5, 1)


def test_second_layout_silver_and_quarantine(spark, shop_job):
    tables = shop_job.tables
    orders = spark.table(tables.orders).collect()
    assert len(orders) == 5
    assert {r["invoice_no"] for r in orders} == {"A1-20110102", "A1-20110315", "B2-20110601", "guest-20110601"}
    assert all(r["unit_price"] is not None and r["description"] is None for r in orders)
    reasons = sorted((r["reject_reason"], r["_raw_line"]) for r in spark.table(tables.orders_quarantine).collect())
    assert reasons == [("duplicate_line", "B2;01/06/2011 12:00;111;1;6.50;Spain"),
                       ("invalid_date", "C3;2011-06-01;111;1;6.50;Spain")]
