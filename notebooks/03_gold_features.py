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
    "as_of_date",
    "seed",
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

result = run_task(spark, settings, "gold_features")

# COMMAND ----------

# MAGIC %md
# MAGIC ## What it wrote

# COMMAND ----------

display(spark.sql(f"SELECT rfm_segment, count(*) AS customers, round(avg(monetary), 2) AS avg_net_revenue FROM {settings.tables.rfm_segments} GROUP BY rfm_segment ORDER BY customers DESC"))
