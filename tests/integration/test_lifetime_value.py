"""The lifetime_value task end to end on customers who buy exactly as BG/NBD and Gamma-Gamma say.

20,000 customers drawn by the generator with the papers' CDNOW parameters, landed as files and run
through bronze, silver, gold_features and lifetime_value: the fit must find the planted parameters.
"""

import datetime as dt
import warnings

import numpy as np
import pandas as pd
import pytest

from customer_segmentation.models import btyd
from customer_segmentation.ops.generate import PurchaseProcess, generate
from customer_segmentation.ops.jobs import run_job, run_task
from testkit import parent_and_children, settings_for_job, table_versions

CUSTOMERS = 20_000
PROCESS = PurchaseProcess()


@pytest.fixture(scope="module")
def planted(spark, tmp_path_factory, session_state):
    out = tmp_path_factory.mktemp("planted")
    generate(out, customers=CUSTOMERS, seed=1, process=PROCESS)
    settings = settings_for_job(tmp_path_factory, session_state, "ltv", out / "transactions")
    run_job(spark, settings, ("bronze", "silver", "gold_features"))
    before = table_versions(settings)
    run_task(spark, settings, "lifetime_value")
    return settings, out, before


def test_fit_recovers_the_planted_parameters(spark, planted):
    """Within sampling error: 3 standard errors (from the observed information) for a, b, p, q and
    gamma; 4 for r and alpha, whose estimates carry a small known bias on this data: purchases are
    counted by day, so two purchases drawn on one day are one (in 26 seeds alpha came out 2.2 standard
    errors high on average, r 1.1; fitted on the exact purchase times both were unbiased)."""
    settings, *_ = planted
    fit = spark.table(settings.tables.clv_model_parameters).first()
    assert fit["not_fitted_reason"] is None and fit["customers"] == CUSTOMERS
    assert fit["distinct_observations"] < CUSTOMERS / 2, "the fit runs on distinct (x, t_x, T), not on customers"
    for name, truth in PROCESS.parameters().items():
        tolerance = 4 if name in ("r", "alpha") else 3
        error = fit["standard_errors"][name]
        assert 0 < error < truth / 5, (name, error)
        assert abs(fit[name] - truth) < tolerance * error, (name, fit[name], truth, error)


def test_summaries_are_exactly_the_planted_purchases(spark, planted):
    settings, out, _ = planted
    bought = pd.read_csv(out / "planted_purchases.csv", dtype={"customer_id": str}, parse_dates=["day"])
    as_of = spark.table(settings.tables.customer_features).first()["as_of_date"]
    bought = bought[bought["day"] < pd.Timestamp(as_of)].sort_values(["customer_id", "day"])
    per_customer = bought.groupby("customer_id").agg(n=("day", "size"), first=("day", "min"), last=("day", "max"),
                                                     total=("amount", "sum"), first_amount=("amount", "first"))
    table = (spark.table(settings.tables.customer_lifetime_value).toPandas().set_index("customer_id")
             .loc[per_customer.index])
    assert (table["x"] == per_customer["n"] - 1).all()
    assert np.allclose(table["t_x"] * 7, (per_customer["last"] - per_customer["first"]).dt.days)
    assert np.allclose(table["T"] * 7, (pd.Timestamp(as_of) - per_customer["first"]).dt.days)
    repeat = per_customer["n"] > 1
    planted_mean = (per_customer["total"] - per_customer["first_amount"]) / (per_customer["n"] - 1)
    assert np.allclose(table.loc[repeat, "mean_repeat_spend"], planted_mean[repeat], rtol=1e-9)
    assert table.loc[~repeat, "mean_repeat_spend"].isna().all()


def test_every_customer_is_scored_in_a_stated_band(spark, planted):
    settings, *_ = planted
    values = spark.table(settings.tables.customer_lifetime_value).toPandas()
    assert len(values) == spark.table(settings.tables.customer_features).count() == values["customer_id"].nunique()
    assert not values.drop(columns="mean_repeat_spend").isna().any().any()
    assert ((values["p_alive"] > 0) & (values["p_alive"] <= 1)).all() and (values["predicted_clv"] >= 0).all()
    assert (values["p_purchase_90d"] <= values["p_alive"] + 1e-12).all()
    assert (values["expected_purchases_horizon"] >= values["expected_purchases_90d"]).all()
    assert values["churn_risk"].tolist() == btyd.churn_risk(values["p_purchase_90d"]).tolist()
    assert set(values["churn_risk"]) == {"active", "at risk", "likely lost"}


def test_holdout_predictions_match_what_customers_did(spark, planted):
    """The model is true here, so the refit before the holdout predicts it closely."""
    settings, *_ = planted
    fit = spark.table(settings.tables.clv_model_parameters).first()
    assert fit["calibration_end"] == fit["as_of_date"] - dt.timedelta(days=fit["holdout_days"])
    assert abs(fit["holdout_relative_error"]) < 0.1, fit["holdout_relative_error"]
    assert fit["holdout_mae"] < 1
    charts = spark.table(settings.tables.clv_validation).toPandas()
    frequency = charts[charts["chart"] == "by_calibration_frequency"].sort_values("position")
    assert frequency["label"].tolist() == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert frequency["customers"].sum() == fit["holdout_customers"]
    assert (frequency["actual"] * frequency["customers"]).sum() == pytest.approx(fit["holdout_actual"])
    weekly = charts[charts["chart"] == "cumulative_by_week"].sort_values("position")
    assert weekly["actual"].is_monotonic_increasing and weekly["in_holdout"].any() and not weekly["in_holdout"].all()
    assert weekly["predicted"].iloc[-1] == pytest.approx(weekly["actual"].iloc[-1], rel=0.1)


def test_registered_model_predicts_the_table(spark, planted):
    import mlflow

    settings, *_ = planted
    model = mlflow.pyfunc.load_model(f"models:/{settings.clv_model_name}@champion")
    table = spark.table(settings.tables.customer_lifetime_value).orderBy("customer_id").limit(300).toPandas()
    inputs = table[["x", "t_x", "T", "mean_repeat_spend"]].rename(columns={"mean_repeat_spend": "m_x"}).astype(float)
    predicted = model.predict(inputs)
    for column in ("p_alive", "expected_purchases_90d", "expected_purchases_horizon", "predicted_clv"):
        assert np.allclose(predicted[column], table[column], rtol=1e-9), column
    assert predicted["churn_risk"].tolist() == table["churn_risk"].tolist()


def test_fit_and_validation_are_tracked_in_mlflow(spark, planted):
    settings, *_ = planted
    _, parent, children = parent_and_children(settings, task="lifetime_value")
    fit = spark.table(settings.tables.clv_model_parameters).first()
    assert parent.info.run_id == fit["mlflow_run_id"]
    assert parent.data.metrics["bgnbd_r"] == pytest.approx(fit["r"])
    assert parent.data.metrics["gamma_gamma_log_likelihood"] == pytest.approx(fit["gamma_gamma_log_likelihood"])
    [validation] = children
    assert validation.info.run_name == "holdout validation"
    assert validation.data.metrics["holdout_mae"] == pytest.approx(fit["holdout_mae"])
    import mlflow

    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(validation.info.run_id, "figures")}
    assert artifacts == {"figures/holdout_by_calibration_frequency.png", "figures/holdout_cumulative_purchases.png"}


def test_the_task_changes_no_other_table(spark, planted):
    settings, _, before = planted
    after = table_versions(settings)
    new = {"customer_lifetime_value", "clv_model_parameters", "clv_validation"}
    assert {k: v for k, v in after.items() if k not in new} == before


def test_a_rerun_replaces_the_scores_and_keeps_one_fit_per_date(spark, planted):
    settings, *_ = planted
    scores = spark.table(settings.tables.customer_lifetime_value).orderBy("customer_id").collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_task(spark, settings, "lifetime_value")
    # What the task prints is its own lines: no library's reminders (MLflow's about input examples).
    assert not [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert spark.table(settings.tables.customer_lifetime_value).orderBy("customer_id").collect() == scores
    assert spark.table(settings.tables.clv_model_parameters).count() == 1
