# Databricks notebook source
# MAGIC %md
# MAGIC # 5 · Lifetime value: who is slipping away, and what each customer is worth
# MAGIC
# MAGIC Fits BG/NBD (repeat purchases, probability alive) and Gamma-Gamma (spend per purchase) by maximum
# MAGIC likelihood on each customer's purchase days before the reference date, validates the fit on a holdout
# MAGIC window (`clv_holdout_days`), scores every customer into `gold.customer_lifetime_value` (probability
# MAGIC alive, expected purchases, predicted value over `clv_horizon_days`, churn-risk band), keeps the fits in
# MAGIC `gold.clv_model_parameters` and `gold.clv_validation`, logs everything to MLflow and registers the model
# MAGIC (`clv_model_name`, alias `champion`). Runs beside `train`, after `gold_features`.
# MAGIC
# MAGIC Its widgets are the parameters the registry (`customer_segmentation/core/settings.py`) lists for
# MAGIC the task, job parameters of the same name; the logic lives in the `customer_segmentation` package,
# MAGIC the same code the local CLI runs.

# COMMAND ----------

try:
    import customer_segmentation  # noqa: F401 - installed from the bundle's wheel in the job
except ImportError:  # interactive use from the bundle's workspace files
    import os
    import sys

    sys.path.insert(0, os.path.abspath(os.path.join(os.getcwd(), "..", "src")))

from customer_segmentation.core.spark import get_spark
from customer_segmentation.ops import notebook
from customer_segmentation.ops.jobs import run_task

dbutils, display = notebook.runtime(globals())
settings = notebook.task_settings(dbutils, "lifetime_value")
spark = get_spark(settings.state_root)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run the task

# COMMAND ----------

result = run_task(spark, settings, "lifetime_value")

# COMMAND ----------

# MAGIC %md
# MAGIC ## What it wrote

# COMMAND ----------

display(spark.sql(f"""
SELECT churn_risk, count(*) AS customers, round(avg(p_purchase_90d), 3) AS mean_p_purchase_90d,
  round(sum(predicted_clv), 0) AS predicted_value
FROM {settings.tables.customer_lifetime_value} GROUP BY churn_risk ORDER BY customers DESC"""))
