"""The synthetic landing data: deterministic, shaped like the real files, carrying their traps."""

import csv
import datetime as dt
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from customer_segmentation.ops.generate import HEADER, customers_for_lines, generate


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    manifest = generate(out, customers=250, seed=3)
    files = sorted((out / "transactions").glob("*.csv"))
    frame = pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False) for f in files], ignore_index=True)
    return out, manifest, files, frame


def _digest(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "manifest.json"}


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path, generated):
    out, *_ = generated
    generate(tmp_path / "again", customers=250, seed=3)
    generate(tmp_path / "other", customers=250, seed=4)
    assert _digest(tmp_path / "again") == _digest(out)
    assert _digest(tmp_path / "other") != _digest(out)


def test_layout_matches_the_real_files(generated):
    _, manifest, files, frame = generated
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}\.csv", f.name) for f in files)
    for file in files[:5]:
        with open(file, newline="") as handle:
            assert next(csv.reader(handle)) == HEADER
    assert frame["InvoiceDate"].str.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}").all()
    ids = frame.loc[frame["CustomerID"] != "", "CustomerID"]
    assert ids.str.fullmatch(r"\d+\.0").all()
    assert pd.to_numeric(frame["Quantity"]).dtype.kind == "i"
    pd.to_numeric(frame["UnitPrice"])  # every price is a number
    # no trading on Saturdays, like the real data
    assert not any(dt.date.fromisoformat(f.stem).weekday() == 5 for f in files)
    assert manifest["lines"] == len(frame) and manifest["files"] == len(files)


def test_carries_the_traps_of_the_real_data(generated):
    _, manifest, _, frame = generated
    quantity = pd.to_numeric(frame["Quantity"])
    price = pd.to_numeric(frame["UnitPrice"])
    cancelled = frame["InvoiceNo"].str.startswith("C")
    assert (frame["CustomerID"] == "").mean() > 0.05, "missing customer IDs"
    assert frame.duplicated().sum() == manifest["traps"]["duplicate_lines"] > 0
    assert cancelled.sum() > 0 and (quantity[cancelled] < 0).all()
    assert ((quantity < 0) & ~cancelled & (price == 0)).sum() > 0, "stock adjustments"
    assert ((price == 0) & (quantity > 0)).sum() > 0 and (price < 0).sum() >= 0
    non_product = set(frame.loc[~frame["StockCode"].str.match(r"^\d"), "StockCode"])
    assert {"POST", "DOT", "D", "AMAZONFEE"} <= non_product
    assert frame["Description"].str.contains(",").any() and frame["Description"].str.contains('"').any()
    net = (quantity * price)[frame["CustomerID"] != ""].groupby(frame["CustomerID"]).sum()
    assert (net <= 0.005).sum() > 0, "customers whose net spend is zero or negative"


def test_planted_behaviours_are_recorded_for_every_customer(generated):
    out, manifest, _, frame = generated
    planted = pd.read_csv(out / "planted_segments.csv", dtype=str)
    customers = set(frame.loc[frame["CustomerID"] != "", "CustomerID"].str.removesuffix(".0"))
    assert set(planted["customer_id"]) == customers
    assert len(planted) == manifest["customers"]
    assert {"loyal_high_spender", "new_customer", "one_time_buyer", "lapsed", "wholesaler"} <= set(
        planted["planted_behaviour"])
    assert json.loads((out / "manifest.json").read_text())["lines"] == manifest["lines"]


def test_seasonality_more_orders_before_christmas(generated):
    _, _, _, frame = generated
    months = pd.to_datetime(frame["InvoiceDate"]).dt.month
    assert (months == 11).sum() > 1.3 * (months == 2).sum()


def test_size_scales_with_the_requested_lines():
    assert customers_for_lines(10_000_000) == pytest.approx(10 * customers_for_lines(1_000_000), rel=0.01)
