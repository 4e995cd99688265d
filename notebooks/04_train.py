# Databricks notebook source
# MAGIC %md
# MAGIC # 4 · Train: segmentation models tracked in MLflow
# MAGIC
# MAGIC Sweeps KMeans, BisectingKMeans and GaussianMixture over the k range on the prepared features
# MAGIC (signed log1p, standardised), measures every candidate exactly (silhouette with squared Euclidean
# MAGIC distance, Davies–Bouldin, Calinski–Harabasz, WCSS), logs each as a nested MLflow run, picks the
# MAGIC champion by the stated rule and registers it in Unity Catalog with the alias `champion`.
# MAGIC Needs classic compute on an ML runtime (MLlib and `mlflow.spark`).
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
settings = notebook.task_settings(dbutils, "train")
spark = get_spark(settings.state_root)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run the task

# COMMAND ----------

result = run_task(spark, settings, "train")

# COMMAND ----------

# MAGIC %md
# MAGIC ## What it wrote

# COMMAND ----------

display(spark.sql(f"""
SELECT algorithm, k, round(silhouette_sq_euclidean, 4) AS silhouette, round(davies_bouldin, 4) AS davies_bouldin,
  round(calinski_harabasz, 1) AS calinski_harabasz, round(smallest_segment_share, 3) AS smallest_share,
  round(smallest_segment_revenue_share, 3) AS smallest_revenue_share, unactionable_segments, is_champion
FROM {settings.tables.clustering_metrics} ORDER BY as_of_date DESC, algorithm, k"""))
