# Databricks notebook source
# MAGIC %md
# MAGIC # 6 · Publish: named segments for every customer
# MAGIC
# MAGIC Loads the model registered as `champion`, scores every customer, names each segment from its
# MAGIC profile (with a recommended action), and writes `gold.customer_segments`, `gold.segment_profiles`
# MAGIC and a snapshot in `gold.segment_history`; `gold.segment_migration` shows movements since the
# MAGIC previous snapshot.
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
settings = notebook.task_settings(dbutils, "publish")
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

display(spark.sql(f"""
SELECT segment_name, customers, round(share_of_customers, 3) AS share_of_customers,
  round(share_of_net_revenue, 3) AS share_of_net_revenue, dominant_rfm_segment, recommended_action
FROM {settings.tables.segment_profiles} ORDER BY customers DESC"""))
