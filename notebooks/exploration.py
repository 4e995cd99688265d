# Databricks notebook source
# MAGIC %md
# MAGIC # Customer segments: exploration for analysts
# MAGIC
# MAGIC Reads only the gold tables: how the RFM features are distributed, how big each segment is,
# MAGIC what characterises it, and how customers moved since the previous snapshot. Change the
# MAGIC widgets to point at another catalog or gold schema.

# COMMAND ----------

try:
    import customer_segmentation  # noqa: F401
except ImportError:
    import os
    import sys

    sys.path.insert(0, os.path.abspath(os.path.join(os.getcwd(), "..", "src")))

import matplotlib.pyplot as plt
import numpy as np

from customer_segmentation.core.spark import get_spark
from customer_segmentation.ops import notebook

dbutils, display = notebook.runtime(globals())
settings = notebook.settings_from_widgets(dbutils, ["catalog", "gold_schema"])
spark = get_spark(settings.state_root)
tables = settings.tables

# COMMAND ----------

# MAGIC %md
# MAGIC ## RFM feature distributions
# MAGIC Recency in days since the last purchase, frequency in orders, monetary as net revenue
# MAGIC (log scale: a few customers, often wholesalers, spend orders of magnitude more than most).

# COMMAND ----------

features = spark.table(tables.customer_features).select("recency_days", "frequency", "monetary").toPandas()
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
axes[0].hist(features["recency_days"], bins=40)
axes[0].set(title="Recency", xlabel="days since last purchase", ylabel="customers")
axes[1].hist(features["frequency"], bins=np.unique(np.geomspace(1, max(2, features["frequency"].max()), 30).round()))
axes[1].set(title="Frequency", xlabel="orders", ylabel="customers", xscale="log")
axes[2].hist(np.sign(features["monetary"]) * np.log10(1 + features["monetary"].abs()), bins=40)
axes[2].set(title="Monetary", xlabel="net revenue, signed log10(1 + value)", ylabel="customers")
fig.tight_layout()
plt.show()

# COMMAND ----------

# MAGIC %md
# MAGIC ## Segment sizes and revenue

# COMMAND ----------

profiles = spark.table(tables.segment_profiles).orderBy("customers", ascending=False).toPandas()
fig, ax = plt.subplots(figsize=(9, 4))
ax.barh(profiles["segment_name"], profiles["share_of_customers"], label="share of customers")
ax.barh(profiles["segment_name"], profiles["share_of_net_revenue"], height=0.4, label="share of net revenue")
ax.invert_yaxis()
ax.set(title="Segments: customers and revenue", xlabel="share")
ax.legend()
fig.tight_layout()
plt.show()

# COMMAND ----------

# MAGIC %md
# MAGIC ## What characterises each segment, and what to do

# COMMAND ----------

display(spark.table(tables.segment_profiles).select(
    "segment_name", "customers", "median_recency_days", "median_frequency", "median_monetary",
    "dominant_rfm_segment", "description", "recommended_action").orderBy("customers", ascending=False))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Migration since the previous snapshot

# COMMAND ----------

display(spark.table(tables.segment_migration).orderBy("customers", ascending=False))
