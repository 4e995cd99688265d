# Databricks notebook source
# MAGIC %md
# MAGIC # 5 · Publish: named segments for every customer
# MAGIC
# MAGIC Loads the model registered as `champion`, scores every customer, names each segment from its
# MAGIC profile (with a recommended action), and writes `gold.customer_segments`, `gold.segment_profiles`
# MAGIC and a snapshot in `gold.segment_history`; `gold.segment_migration` shows movements since the
# MAGIC previous snapshot.
# MAGIC
# MAGIC Every widget is a job parameter of the same name (`resources/customer_segmentation.job.yml`); the
# MAGIC logic lives in the `customer_segmentation` package, the same code the local CLI runs.

# COMMAND ----------

try:
    import customer_segmentation  # noqa: F401 - installed from the bundle's wheel in the job
except ImportError:  # interactive use from the bundle's workspace files
    import os
    import sys

    sys.path.insert(0, os.path.abspath(os.path.join(os.getcwd(), "..", "src")))

from customer_segmentation import notebook
from customer_segmentation.jobs import run_task
from customer_segmentation.spark import get_spark

PARAMETERS = [
    "catalog",
    "bronze_schema",
    "silver_schema",
    "gold_schema",
    "run_id",
    "experiment_name",
    "model_name",
    "model_staging_path",
    "customers_path",
    "engagement_path",
    "products_path",
]
dbutils, display = notebook.runtime(globals())
settings = notebook.settings_from_widgets(dbutils, PARAMETERS)
spark = get_spark(settings.state_root)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run the task

# COMMAND ----------

result = run_task(spark, settings, "publish")

# COMMAND ----------

# MAGIC %md
# MAGIC ## What it wrote

# COMMAND ----------

display(spark.sql(f"SELECT segment_name, customers, round(share_of_customers, 3) AS share_of_customers, round(share_of_net_revenue, 3) AS share_of_net_revenue, dominant_rfm_segment, recommended_action FROM {settings.tables.segment_profiles} ORDER BY customers DESC"))
