# Databricks notebook source
# MAGIC %md
# MAGIC # 3 · Gold: customer features, RFM segments, insights
# MAGIC
# MAGIC Builds one row per customer as of the reference date (`as_of_date`; `auto` = the day after the
# MAGIC latest invoice): recency, frequency, net monetary value and more in `gold.customer_features`, the
# MAGIC rule-based RFM segments in `gold.rfm_segments`, and the business insight tables (monthly revenue,
# MAGIC countries, top products and customers, lost customers, revenue concentration), and each customer's
# MAGIC value tier in `gold.value_tiers`. With the optional customer and engagement sources, their attributes
# MAGIC and engagement scores are joined onto `gold.customer_features`.
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
settings = notebook.task_settings(dbutils, "gold_features")
spark = get_spark(settings.state_root)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run the task

# COMMAND ----------

result = run_task(spark, settings, "gold_features")

# COMMAND ----------

# MAGIC %md
# MAGIC ## What it wrote

# COMMAND ----------

display(spark.sql(f"""
SELECT rfm_segment, count(*) AS customers, round(avg(monetary), 2) AS avg_net_revenue
FROM {settings.tables.rfm_segments} GROUP BY rfm_segment ORDER BY customers DESC"""))
