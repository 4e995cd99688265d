"""Task `lifetime_value`: is each customer still with us, and what are they worth from here on?

BG/NBD (repeat purchases, probability alive) and Gamma-Gamma (spend per purchase), fitted by
maximum likelihood on the driver (`btyd`) over the distinct repeat-purchase summaries Spark
aggregates; every customer scored in Spark with the same code the registered model runs; the fit
validated on a holdout window, the last `clv_holdout_days` before the reference date, by refitting
without it and predicting it. Everything goes to MLflow and to three gold tables. Data the models
cannot be fitted on (too few customers, no repeat buyers, a fit that does not converge, a holdout
longer than the history) gives a recorded reason, not a crash: the predictions are then null.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ..core.console import say
from ..core.delta import overwrite_tables
from ..core.errors import UserError
from ..core.settings import Settings
from ..core.tables import table
from . import btyd, figures, tracking
from .purchase_history import WEEK, holdout_transactions, purchase_days, summaries

MIN_CUSTOMERS = 20        # fewer cannot pin four parameters down
MIN_REPEAT_CUSTOMERS = 10
SCORING_CUSTOMERS_PER_TASK = 100_000
FREQUENCY_BUCKETS = 8     # holdout chart by calibration frequency: 0, 1, ..., 7 and more
MODEL_CODE = Path(__file__).with_name("clv_model.py")
SCORE_SCHEMA = ("p_alive double, p_purchase_90d double, expected_purchases_90d double, "
                "expected_purchases_horizon double, expected_spend_per_purchase double, predicted_clv double, "
                "churn_risk string")


@dataclass
class Fitted:
    bgnbd: btyd.Fit | None
    gamma_gamma: btyd.Fit | None
    customers: int
    distinct: int
    spend_customers: int
    reasons: list[str]


def _weeks(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (frame["x"].to_numpy(float), frame["t_x_days"].to_numpy(float) / WEEK,
            frame["T_days"].to_numpy(float) / WEEK)


@dataclass
class Observations:
    """What the fits read, on the driver: the distinct (x, t_x_days, T_days) with their customer
    counts, and the distinct (x, m_x) of repeat customers with a positive mean spend with theirs."""

    purchases: pd.DataFrame
    spend: pd.DataFrame


def observations(summary: DataFrame) -> Observations:
    """The distinct observations of a summary (x, t_x_days, T_days, m_x), aggregated by Spark."""
    # Sorted: the fit then sums its terms in one order, whatever order Spark returned them in, so
    # the same data give the same estimates to the last digit (a batched and a one-shot run agree).
    purchases = summary.groupBy("x", "t_x_days", "T_days").count().toPandas().sort_values(
        ["x", "t_x_days", "T_days"], ignore_index=True)
    spend = (summary.where("x > 0 AND m_x > 0").groupBy("x", F.round("m_x", 6).alias("m_x")).count().toPandas()
             .sort_values(["x", "m_x"], ignore_index=True))
    return Observations(purchases, spend)


def fit_models(summary: DataFrame) -> Fitted:
    """Both models on a summary (x, t_x_days, T_days, m_x), or the reasons they could not be fitted."""
    return fit_observations(observations(summary))


def fit_observations(observed: Observations) -> Fitted:
    """Both models on the distinct observations, on the driver (no Spark), or the reasons they could not be fitted."""
    combos, spend = observed.purchases, observed.spend
    customers, reasons = int(combos["count"].sum()), []
    repeaters = int(combos.loc[combos["x"] > 0, "count"].sum())
    bgnbd = gamma_gamma = None
    if customers < MIN_CUSTOMERS:
        reasons.append(f"BG/NBD: only {customers} customers; at least {MIN_CUSTOMERS} are needed")
    elif repeaters == 0:
        reasons.append("BG/NBD: no customer bought twice, so repeat buying cannot be estimated")
    else:
        bgnbd = btyd.fit_bgnbd(*_weeks(combos), combos["count"].to_numpy(float))
        if not bgnbd.converged or not all(math.isfinite(v) and v > 0 for v in bgnbd.params.values()):
            estimates = ", ".join(f"{k} = {v:.3g}" for k, v in bgnbd.params.items())
            reasons.append(f"BG/NBD: the fit did not converge (optimiser: {bgnbd.message.rstrip(': ')}; estimates "
                           f"{estimates}): the data do not pin the model down")
            bgnbd = None
    spend_customers = int(spend["count"].sum()) if len(spend) else 0
    if spend_customers < MIN_REPEAT_CUSTOMERS:
        reasons.append(f"Gamma-Gamma: only {spend_customers} repeat customers with a positive mean spend; at least "
                       f"{MIN_REPEAT_CUSTOMERS} are needed")
    else:
        gamma_gamma = btyd.fit_gamma_gamma(spend["x"], spend["m_x"], spend["count"])
        params = gamma_gamma.params
        if not gamma_gamma.converged or params["q"] <= 1:
            reasons.append(f"Gamma-Gamma: the fit did not converge or has no finite mean (q = {params['q']:.3g}; "
                           f"{gamma_gamma.message})")
            gamma_gamma = None
    return Fitted(bgnbd, gamma_gamma, customers, len(combos), spend_customers, reasons)


def scoring_config(fitted: Fitted, settings: Settings) -> dict:
    return {"bgnbd": fitted.bgnbd.params if fitted.bgnbd else None,
            "gamma_gamma": fitted.gamma_gamma.params if fitted.gamma_gamma else None,
            "horizon_days": settings.clv_horizon_days, "annual_discount_rate": settings.clv_annual_discount_rate,
            "margin": settings.clv_margin}


def score(summary: DataFrame, config: dict, as_of_date: dt.date, customers: int) -> DataFrame:
    """gold.customer_lifetime_value rows: every customer of `summary` (`customers` of them) scored in
    Spark by `btyd.score`, the code the registered model runs."""
    # A Python task has a fixed cost (4,371 customers: 8 tasks 0.9-1.1 s warm, 1 task 0.24-0.28 s),
    # and scoring is vectorised: a task per SCORING_CUSTOMERS_PER_TASK, read from the cached summary.
    tasks = max(1, math.ceil(customers / SCORING_CUSTOMERS_PER_TASK))
    inputs = summary.coalesce(tasks).select(
        "customer_id", "x", (F.col("t_x_days") / WEEK).alias("t_x"), (F.col("T_days") / WEEK).alias("T"),
        F.col("m_x").alias("mean_repeat_spend"))

    def batches(frames):
        for frame in frames:
            yield pd.concat([frame, btyd.score(frame.rename(columns={"mean_repeat_spend": "m_x"}), config)], axis=1)

    schema = ", ".join(f"`{name}` {kind}" for name, kind in inputs.dtypes) + ", " + SCORE_SCHEMA
    return inputs.mapInPandas(batches, schema).withColumn("as_of_date", F.lit(as_of_date))


def validate(days: DataFrame, as_of_date: dt.date, holdout_days: int) -> tuple[dict, list[tuple] | None]:
    """Refit before the holdout window and predict it: totals, MAE and the papers' two charts."""
    calibration_end = as_of_date - dt.timedelta(days=holdout_days)
    first_day = days.agg(F.min("day")).first()[0]
    outcome = {"holdout_days": holdout_days, "calibration_end": calibration_end}
    if first_day is None or calibration_end <= first_day + dt.timedelta(days=holdout_days):
        outcome["validation_skipped_reason"] = (
            f"the holdout of {holdout_days} days leaves less calibration history than that before it (data from "
            f"{first_day}); choose a shorter clv_holdout_days")
        return outcome, None
    before = days.where(F.col("day") < F.lit(calibration_end))
    cohort = before.groupBy("customer_id").agg(F.min("day").alias("first_purchase_date"))
    calibration = summaries(before, cohort, calibration_end)
    fitted = fit_models(calibration)
    if fitted.bgnbd is None:
        outcome["validation_skipped_reason"] = "calibration fit: " + "; ".join(fitted.reasons)
        return outcome, None
    params = tuple(fitted.bgnbd.params.values())
    holdout_weeks = holdout_days / WEEK
    observed = (calibration.join(holdout_transactions(days, calibration_end, as_of_date), "customer_id", "left")
                .fillna(0, ["holdout_transactions"])
                .groupBy("x", "t_x_days", "T_days", "holdout_transactions").count().toPandas())
    predicted = btyd.expected_purchases(params, holdout_weeks, *_weeks(observed))
    counts = observed["count"].to_numpy(float)
    actual = observed["holdout_transactions"].to_numpy(float)
    outcome.update(holdout_customers=int(counts.sum()), holdout_actual=float(actual @ counts),
                   holdout_predicted=float(predicted @ counts),
                   holdout_mae=float(np.abs(predicted - actual) @ counts / counts.sum()))
    outcome["holdout_relative_error"] = ((outcome["holdout_predicted"] - outcome["holdout_actual"])
                                         / outcome["holdout_actual"] if outcome["holdout_actual"] else None)
    outcome["calibration_params"] = fitted.bgnbd.params
    bucket = np.minimum(observed["x"].to_numpy(int), FREQUENCY_BUCKETS - 1)
    by_frequency = pd.DataFrame({"bucket": bucket, "count": counts, "actual": actual * counts,
                                 "predicted": predicted * counts}).groupby("bucket").sum()
    frequency_rows = [("by_calibration_frequency", int(b), f"{b}+" if b == FREQUENCY_BUCKETS - 1 else str(b),
                       int(row["count"]), float(row["actual"] / row["count"]),
                       float(row["predicted"] / row["count"]), None) for b, row in by_frequency.iterrows()]
    return outcome, frequency_rows + _cumulative_rows(days, cohort, params, calibration_end, as_of_date)


def _cumulative_rows(days: DataFrame, cohort: DataFrame, params: tuple, calibration_end: dt.date,
                     as_of_date: dt.date) -> list[tuple]:
    """Cumulative repeat purchases of the calibration cohort, week by week: actual, and predicted
    from each customer's first purchase on (equation 9 of the BG/NBD paper)."""
    firsts = cohort.groupBy("first_purchase_date").count().toPandas()
    repeats = (days.join(cohort, "customer_id").where(F.col("day") > F.col("first_purchase_date"))
               .groupBy("day").count().toPandas())
    start = min(firsts["first_purchase_date"])
    weeks = [start + dt.timedelta(days=7 * i) for i in range(1, (as_of_date - start).days // 7 + 1)]
    first_days = np.array([(d - start).days for d in firsts["first_purchase_date"]], dtype=float)
    repeat_days = np.array([(d - start).days for d in repeats["day"]], dtype=float)
    rows = []
    for position, end in enumerate(weeks):
        elapsed = (end - start).days
        exposure = np.clip(elapsed - first_days, 0, None) / WEEK
        predicted = float(btyd.expected_cumulative_purchases(params, exposure) @ firsts["count"].to_numpy(float))
        actual = float(repeats["count"].to_numpy(float)[repeat_days < elapsed].sum())
        rows.append(("cumulative_by_week", position, (end - dt.timedelta(days=7)).isoformat(), None, actual,
                     predicted, end > calibration_end))
    return rows


def parameters_row(fitted: Fitted, outcome: dict, settings: Settings, as_of_date: dt.date, run_id: str) -> dict:
    bgnbd = fitted.bgnbd.params if fitted.bgnbd else {}
    gamma_gamma = fitted.gamma_gamma.params if fitted.gamma_gamma else {}
    errors = {**(fitted.bgnbd.standard_errors if fitted.bgnbd else {}),
              **(fitted.gamma_gamma.standard_errors if fitted.gamma_gamma else {})}
    return {
        "as_of_date": as_of_date, **{k: bgnbd.get(k) for k in ("r", "alpha", "a", "b")},
        **{k: gamma_gamma.get(k) for k in ("p", "q", "gamma")},
        "standard_errors": {k: v for k, v in errors.items() if math.isfinite(v)},
        "bgnbd_log_likelihood": fitted.bgnbd.log_likelihood if fitted.bgnbd else None,
        "gamma_gamma_log_likelihood": fitted.gamma_gamma.log_likelihood if fitted.gamma_gamma else None,
        "customers": fitted.customers, "distinct_observations": fitted.distinct,
        "spend_customers": fitted.spend_customers, "spend_excluded": fitted.customers - fitted.spend_customers,
        "not_fitted_reason": "; ".join(fitted.reasons) or None, "horizon_days": settings.clv_horizon_days,
        "annual_discount_rate": settings.clv_annual_discount_rate, "margin": settings.clv_margin,
        **{k: outcome.get(k) for k in ("holdout_days", "calibration_end", "holdout_customers", "holdout_actual",
                                       "holdout_predicted", "holdout_relative_error", "holdout_mae",
                                       "validation_skipped_reason")},
        "mlflow_run_id": run_id,
    }


def run(spark: SparkSession, settings: Settings) -> dict[str, int]:
    tables = settings.tables
    features = spark.table(tables.customer_features)
    first = features.select("as_of_date").first()
    if first is None:
        raise UserError(f"{tables.customer_features} is empty: there are no customers to value")
    as_of_date = first[0]
    days = purchase_days(spark.table(tables.orders), as_of_date).persist()
    summary = summaries(days, features, as_of_date).persist()
    try:
        observed = observations(summary)  # aggregated by Spark before the timer: the time printed is the fit's own
        started = time.perf_counter()
        fitted = fit_observations(observed)
        say(f"[lifetime_value] fitted on {fitted.distinct:,} distinct summaries of {fitted.customers:,} customers "
            f"in {time.perf_counter() - started:.2f} s")
        for reason in fitted.reasons:
            say(f"[lifetime_value] not fitted: {reason}")
        outcome, charts = validate(days, as_of_date, settings.clv_holdout_days)
        if "validation_skipped_reason" in outcome:
            say(f"[lifetime_value] holdout validation skipped: {outcome['validation_skipped_reason']}")
        else:
            say(f"[lifetime_value] holdout ({settings.clv_holdout_days} days): {outcome['holdout_predicted']:,.0f} "
                f"purchases predicted, {outcome['holdout_actual']:,.0f} made "
                f"({outcome['holdout_relative_error']:+.1%}), mean absolute error {outcome['holdout_mae']:.3f} "
                f"per customer")
        config = scoring_config(fitted, settings)
        with tracking.task_run(settings, "lifetime_value", f"lifetime value as of {as_of_date}") as parent:
            _log(settings, fitted, outcome, charts, as_of_date)
            scored = score(summary, config, as_of_date, fitted.customers)
            parameters = spark.createDataFrame(
                [parameters_row(fitted, outcome, settings, as_of_date, parent.info.run_id)],
                table("clv_model_parameters").spec().schema)
            validation = spark.createDataFrame([(as_of_date, *row) for row in charts or []],
                                               table("clv_validation").spec().schema)
            # The current scores replace the whole table; a fit's parameters and validation replace
            # the rows of its as_of_date (the history of fits). Each in one commit, side by side.
            this_date = F.col("as_of_date") == F.lit(as_of_date)
            written = overwrite_tables(spark, {
                tables.customer_lifetime_value: (scored, table("customer_lifetime_value").spec()),
                tables.clv_model_parameters: (parameters, table("clv_model_parameters").spec(), this_date),
                tables.clv_validation: (validation, table("clv_validation").spec(), this_date),
            })
            if fitted.bgnbd:
                _register(settings, config)
        return written
    finally:
        summary.unpersist()
        days.unpersist()


def _log(settings: Settings, fitted: Fitted, outcome: dict, charts: list[tuple] | None, as_of_date: dt.date) -> None:
    import mlflow

    mlflow.log_params({"as_of_date": str(as_of_date), "clv_horizon_days": settings.clv_horizon_days,
                       "clv_annual_discount_rate": settings.clv_annual_discount_rate,
                       "clv_margin": settings.clv_margin, "clv_holdout_days": settings.clv_holdout_days,
                       "customers": fitted.customers, "distinct_observations": fitted.distinct,
                       "spend_customers": fitted.spend_customers, "job_run_id": settings.run_id})
    metrics = {}
    for fit, prefix in ((fitted.bgnbd, "bgnbd"), (fitted.gamma_gamma, "gamma_gamma")):
        if fit:
            metrics.update({f"{prefix}_{k}": v for k, v in fit.params.items()})
            metrics[f"{prefix}_log_likelihood"] = fit.log_likelihood
    mlflow.log_metrics(metrics)
    if fitted.reasons:
        mlflow.set_tag("not_fitted_reason", "; ".join(fitted.reasons)[:5000])
    with mlflow.start_run(run_name="holdout validation", nested=True):
        mlflow.log_params({"clv_holdout_days": settings.clv_holdout_days,
                           "calibration_end": str(outcome["calibration_end"])})
        if charts is None:
            mlflow.set_tag("validation_skipped_reason", outcome["validation_skipped_reason"][:5000])
            return
        mlflow.log_metrics({k: float(outcome[k]) for k in ("holdout_customers", "holdout_actual",
                                                           "holdout_predicted", "holdout_mae")
                            if outcome.get(k) is not None}
                           | {f"calibration_{k}": v for k, v in outcome["calibration_params"].items()})
        frame = pd.DataFrame(charts, columns=table("clv_validation").spec().names[1:])
        with tempfile.TemporaryDirectory() as tmp:
            figures.holdout_by_frequency(frame, Path(tmp) / "holdout_by_calibration_frequency.png")
            figures.cumulative_purchases(frame, Path(tmp) / "holdout_cumulative_purchases.png")
            mlflow.log_artifacts(tmp, "figures")


def _register(settings: Settings, config: dict) -> None:
    """The fitted models as an MLflow pyfunc (models from code: clv_model.py with btyd.py beside it),
    registered with the alias champion: its predict gives the table's values."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    inputs = Schema([ColSpec("double", c) for c in ("x", "t_x", "T", "m_x")])
    outputs = Schema([ColSpec("string" if kind == "string" else "double", name) for name, kind in
                      (column.split() for column in SCORE_SCHEMA.split(", "))])
    info = mlflow.pyfunc.log_model(
        name="lifetime_value_model", python_model=str(MODEL_CODE), code_paths=[str(MODEL_CODE.with_name("btyd.py"))],
        model_config=config, signature=ModelSignature(inputs=inputs, outputs=outputs),
        pip_requirements=[f"numpy=={np.__version__}", f"pandas=={pd.__version__}", _requirement("scipy")])
    registered = mlflow.register_model(info.model_uri, settings.clv_model_name)
    mlflow.MlflowClient().set_registered_model_alias(settings.clv_model_name, tracking.CHAMPION_ALIAS,
                                                     registered.version)
    say(f"[lifetime_value] registered {settings.clv_model_name} version {registered.version} "
        f"as @{tracking.CHAMPION_ALIAS}")


def _requirement(package: str) -> str:
    from importlib.metadata import version

    return f"{package}=={version(package)}"
