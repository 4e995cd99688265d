"""Degenerate data: training skips impossible candidates with a reason, and says when nothing is possible."""

import datetime as dt

import pytest

from customer_segmentation.core.delta import overwrite_table
from customer_segmentation.core.errors import UserError
from customer_segmentation.core.rules import rfm_rules
from customer_segmentation.core.tables import table
from customer_segmentation.gold.rfm import rfm_segments
from customer_segmentation.ops.jobs import run_task

pytestmark = pytest.mark.faults
CUSTOMER_FEATURES, RFM_SEGMENTS = table("customer_features").spec(), table("rfm_segments").spec()


def features_table(spark, settings, rows):
    """Write a hand-made gold.customer_features: rows of (customer, recency, frequency, monetary)."""
    records = []
    for customer, recency, frequency, monetary in rows:
        records.append((customer, recency, frequency, float(monetary), float(monetary), 0.0,
                        float(monetary) / max(frequency, 1), dt.date(2011, 1, 1), dt.date(2011, 12, 1), 300,
                        frequency, 0.0, 30.0, "United Kingdom", dt.date(2011, 12, 10)))
    schema = CUSTOMER_FEATURES.schema
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {settings.catalog}.{settings.gold_schema}")
    overwrite_table(spark, settings.tables.customer_features, spark.createDataFrame(records, schema), CUSTOMER_FEATURES)
    segments = rfm_segments(spark.table(settings.tables.customer_features), rfm_rules(), "No Net Purchases")
    overwrite_table(spark, settings.tables.rfm_segments, segments, RFM_SEGMENTS)


def metrics(spark, settings):
    return {(r["algorithm"], r["k"]): r for r in spark.table(settings.tables.clustering_metrics).collect()}


def test_a_single_customer_means_no_segmentation_is_possible(spark, make_settings, capsys):
    settings = make_settings(k_min=2, k_max=3)
    features_table(spark, settings, [("1", 10, 3, 100)])
    with pytest.raises(UserError, match="no segmentation possible") as error:
        run_task(spark, settings, "train")
    assert "kmeans k=2: only 1 customers with net purchases: k=2 needs more customers than segments" in str(error.value)


def test_fewer_customers_than_k_skips_the_impossible_candidates(spark, make_settings, capsys):
    settings = make_settings(k_min=2, k_max=5, algorithms=("kmeans", "bisecting_kmeans"))
    features_table(spark, settings, [("1", 5, 20, 5000), ("2", 300, 1, 20), ("3", 150, 4, 400)])
    run_task(spark, settings, "train")
    result = metrics(spark, settings)
    for algorithm in ("kmeans", "bisecting_kmeans"):
        for k in (3, 4, 5):  # k = 3 would make every customer a segment of one
            assert result[(algorithm, k)]["skipped_reason"] == (
                f"only 3 customers with net purchases: k={k} needs more customers than segments")
        assert result[(algorithm, 2)]["skipped_reason"] is None
    assert sum(r["is_champion"] for r in result.values()) == 1
    assert "skipped: only 3 customers with net purchases: k=4" in capsys.readouterr().out
    run_task(spark, settings, "publish")
    assert spark.table(settings.tables.customer_segments).count() == 3


def test_identical_customers_cannot_be_split(spark, make_settings):
    settings = make_settings(k_min=2, k_max=3)
    features_table(spark, settings, [(str(i), 30, 2, 100) for i in range(12)])
    with pytest.raises(UserError, match="no segmentation possible") as error:
        run_task(spark, settings, "train")
    message = str(error.value)
    assert "kmeans k=2: filled only 1 of 2 segments" in message
    assert "gaussian_mixture k=2:" in message
    result = metrics(spark, settings)
    assert len(result) == 6 and not any(r["is_champion"] for r in result.values())
    assert all(r["skipped_reason"] for r in result.values())
