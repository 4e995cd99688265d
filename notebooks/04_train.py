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
    "landing_path",
    "source_profile",
    "seed",
    "k_min",
    "k_max",
    "algorithms",
    "features",
    "kmeans_starts",
    "min_segment_share",
    "selection_tolerance",
    "max_feature_correlation",
    "silhouette_sample_size",
    "experiment_name",
    "model_name",
    "model_staging_path",
    "currency",
]
dbutils, display = notebook.runtime(globals())
settings = notebook.settings_from_widgets(dbutils, PARAMETERS)
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

display(spark.sql(f"SELECT algorithm, k, round(silhouette_sq_euclidean, 4) AS silhouette, round(davies_bouldin, 4) AS davies_bouldin, round(calinski_harabasz, 1) AS calinski_harabasz, round(smallest_segment_share, 3) AS smallest_share, is_champion FROM {settings.tables.clustering_metrics} ORDER BY as_of_date DESC, algorithm, k"))
