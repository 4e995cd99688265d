"""Degenerate data: training skips impossible candidates with a reason, and says when nothing is possible."""

import datetime as dt

import pytest

from customer_segmentation.core.delta import overwrite_table
from customer_segmentation.core.errors import UserError
from customer_segmentation.ops.jobs import run_task
from testkit import features_table

pytestmark = pytest.mark.faults


def value_without_orders(spark, settings):
    """Task lifetime_value on the hand-made features, with no order lines behind them."""
    from customer_segmentation.silver.orders import ORDERS

    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {settings.catalog}.{settings.silver_schema}")
    overwrite_table(spark, settings.tables.orders, spark.createDataFrame([], ORDERS.schema), ORDERS)
    run_task(spark, settings, "lifetime_value")


def metrics(spark, settings):
    return {(r["algorithm"], r["k"]): r for r in spark.table(settings.tables.clustering_metrics).collect()}


def test_no_customers_or_none_with_net_purchases_is_refused_before_any_fit(spark, make_settings):
    settings = make_settings(k_min=2, k_max=3)
    features_table(spark, settings, [])
    with pytest.raises(UserError, match=r"customer_features is empty: there are no customers to segment"):
        run_task(spark, settings, "train")
    features_table(spark, settings, [("1", 10, 0, 0), ("2", 20, 1, -15)])
    with pytest.raises(UserError, match=r"no customer in \S+ has net purchases of goods \(2 customers, all with a "
                                        r"net spend of zero or below\): nothing to segment"):
        run_task(spark, settings, "train")
    assert not spark.catalog.tableExists(settings.tables.clustering_metrics)


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
    value_without_orders(spark, settings)  # publish needs the lifetime values too
    run_task(spark, settings, "publish")
    assert spark.table(settings.tables.customer_segments).count() == 3
    # No lifetime value could be fitted: its columns are null, never NaN.
    profiles = spark.table(settings.tables.segment_profiles)
    assert profiles.where("share_of_predicted_clv IS NULL AND mean_predicted_clv IS NULL").count() == profiles.count()
    assert profiles.where(" OR ".join(f"isnan({c})" for c, kind in profiles.dtypes if kind == "double")).count() == 0


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


SUMMARY = "customer_id string, x bigint, t_x_days int, T_days int, m_x double"


def test_lifetime_value_models_say_why_they_cannot_be_fitted(spark):
    from customer_segmentation.models.lifetime_value import fit_models

    few = fit_models(spark.createDataFrame([(str(i), 1, 10, 50, 20.0) for i in range(5)], SUMMARY))
    assert few.bgnbd is None and few.gamma_gamma is None
    assert few.reasons == ["BG/NBD: only 5 customers; at least 20 are needed",
                           "Gamma-Gamma: only 5 repeat customers with a positive mean spend; at least 10 are needed"]
    one_time = fit_models(spark.createDataFrame([(str(i), 0, 0, 30 + i, None) for i in range(40)], SUMMARY))
    assert one_time.bgnbd is None
    assert one_time.reasons[0] == "BG/NBD: no customer bought twice, so repeat buying cannot be estimated"
    # Everyone buys again at one rate and stops after a purchase half the time: the maximum lies at
    # the homogeneous limit (r, alpha, a, b all running to the bound), whose predictions are finite.
    flat = fit_models(spark.createDataFrame([(str(i), 1 + i % 3, 5 + i, 60 + i, 0.0) for i in range(40)], SUMMARY))
    assert flat.bgnbd is not None and "the data do not pin it down" in flat.bgnbd.message
    rate = flat.bgnbd.params["r"] / flat.bgnbd.params["alpha"]
    drop_out = flat.bgnbd.params["a"] / (flat.bgnbd.params["a"] + flat.bgnbd.params["b"])
    assert 0.4 < rate < 0.7 and 0.45 < drop_out < 0.55, (rate, drop_out)
    assert flat.reasons == ["Gamma-Gamma: only 0 repeat customers with a positive mean spend; at least 10 are needed"]


def test_a_fit_that_does_not_converge_is_not_used_and_says_why(spark, monkeypatch):
    from customer_segmentation.models import btyd, lifetime_value

    def stalled(*_args):
        params = dict.fromkeys(["r", "alpha", "a", "b"], 1.0)
        return btyd.Fit(params, params, -1e3, False, "ABNORMAL: ")

    monkeypatch.setattr(btyd, "fit_bgnbd", stalled)
    rows = [(str(i), 1 + i % 3, 5 + i, 60 + i, 20.0 + i) for i in range(40)]
    fitted = lifetime_value.fit_models(spark.createDataFrame(rows, SUMMARY))
    assert fitted.bgnbd is None and fitted.gamma_gamma is not None
    assert fitted.reasons == ["BG/NBD: the fit did not converge (optimiser: ABNORMAL; estimates r = 1, alpha = 1, "
                              "a = 1, b = 1): the data do not pin the model down"]


def test_a_holdout_longer_than_the_history_skips_the_validation_with_a_reason(spark):
    from customer_segmentation.models.lifetime_value import validate

    days = spark.createDataFrame([(str(i % 30), dt.date(2011, 1, 1) + dt.timedelta(days=3 * i), 10.0)
                                  for i in range(90)], "customer_id string, day date, net_amount double")
    outcome, charts = validate(days, dt.date(2011, 12, 10), holdout_days=200)
    assert charts is None
    assert outcome["validation_skipped_reason"] == (
        "the holdout of 200 days leaves less calibration history than that before it (data from 2011-01-01); "
        "choose a shorter clv_holdout_days")


def test_lifetime_value_without_a_fit_writes_null_predictions_and_the_reason(spark, make_settings, capsys):
    settings = make_settings()
    features_table(spark, settings, [(str(i), 10, 1, 100) for i in range(3)])
    value_without_orders(spark, settings)
    values = spark.table(settings.tables.customer_lifetime_value).collect()
    assert len(values) == 3 and all(r["p_alive"] is None and r["churn_risk"] is None for r in values)
    fit = spark.table(settings.tables.clv_model_parameters).first()
    assert fit["not_fitted_reason"].startswith("BG/NBD: only 3 customers")
    assert fit["validation_skipped_reason"].startswith("the holdout of 90 days")
    out = capsys.readouterr().out
    assert "[lifetime_value] not fitted: BG/NBD: only 3 customers" in out
