# Databricks notebook source
# MAGIC %md
# MAGIC # 1 · Bronze: ingest new landing files
# MAGIC
# MAGIC Reads every file that has landed in `landing_path` since the last run (Auto Loader on Databricks,
# MAGIC a checkpointed file stream locally) and appends its lines, exactly as they arrived, to
# MAGIC `<catalog>.<bronze_schema>.transactions_raw` with `_source_file`, `_ingested_at` and
# MAGIC `_rescued_data`. Files already ingested are skipped; a rerun after a failure writes nothing twice.
# MAGIC The optional sources (`customers_path`, `engagement_path`, `products_path`, empty = not used) are
# MAGIC ingested the same way into `<source>_raw`.
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
settings = notebook.task_settings(dbutils, "bronze")
spark = get_spark(settings.state_root)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run the task

# COMMAND ----------

result = run_task(spark, settings, "bronze")

# COMMAND ----------

# MAGIC %md
# MAGIC ## What it wrote

# COMMAND ----------

display(spark.sql(f"""
SELECT _source_file, count(*) AS lines, max(_ingested_at) AS ingested_at
FROM {settings.tables.transactions_raw}
GROUP BY _source_file ORDER BY ingested_at DESC, _source_file DESC"""))
