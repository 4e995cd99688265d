# Databricks notebook source
# MAGIC %md
# MAGIC # 2 · Silver: clean orders and quarantine
# MAGIC
# MAGIC Types and normalises the new bronze lines into `silver.orders` (cancellations and returns kept and
# MAGIC flagged, guests kept as valid sales) and sends every other line, unchanged, to
# MAGIC `silver.orders_quarantine` with a `reject_reason`. Every bronze line lands in exactly one of the two;
# MAGIC the counts of each run are in `silver.quality_log`. Optional sources in use are cleaned into
# MAGIC `silver.<source>` and `silver.<source>_quarantine`, counted in `silver.source_quality`.
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
settings = notebook.task_settings(dbutils, "silver")
spark = get_spark(settings.state_root)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run the task

# COMMAND ----------

result = run_task(spark, settings, "silver")

# COMMAND ----------

# MAGIC %md
# MAGIC ## What it wrote

# COMMAND ----------

display(spark.sql(f"""
SELECT run_id, batch_id, processed_at, lines_in, lines_out, lines_rejected, rejects_by_reason
FROM {settings.tables.quality_log} ORDER BY processed_at DESC"""))
