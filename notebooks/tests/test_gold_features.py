# Databricks notebook source
# MAGIC %md
# MAGIC # Test: the `gold_features` task (nutter)
# MAGIC
# MAGIC Runs the task on a small generated dataset in schemas of its own, asserts on what it wrote, and
# MAGIC drops the schemas. On Databricks: `nutter run <workspace path>/notebooks/tests/ --recursive`;
# MAGIC locally, pytest executes this file (tests/notebooks).

# COMMAND ----------

try:
    import customer_segmentation  # noqa: F401
except ImportError:
    import os
    import sys

    sys.path.insert(0, os.path.abspath(os.path.join(os.getcwd(), "..", "..", "src")))

from runtime.nutterfixture import NutterFixture

from customer_segmentation.core.spark import get_spark
from customer_segmentation.ops import notebook
from customer_segmentation.ops.jobs import run_task

dbutils, display = notebook.runtime(globals())
spark = get_spark(notebook.local_state_root())

# COMMAND ----------


class GoldFeaturesFixture(NutterFixture):
    def before_all(self):
        self.scratch = notebook.Scratch(dbutils, "gold_features")
        self.scratch.run(spark, 'bronze', 'silver')

    def run_features(self):
        run_task(spark, self.scratch.settings, "gold_features")

    def assertion_features(self):
        tables = self.scratch.settings.tables
        features = spark.table(tables.customer_features)
        customers = spark.table(tables.orders).where("customer_id IS NOT NULL").select("customer_id").distinct()
        assert features.count() == customers.count() > 0
        assert features.where("recency_days IS NULL OR monetary IS NULL OR frequency IS NULL").count() == 0
        assert spark.table(tables.rfm_segments).count() == features.count()

    def after_all(self):
        self.scratch.drop(spark)


# COMMAND ----------

result = GoldFeaturesFixture().execute_tests()
print(result.to_string())
if notebook.is_databricks():
    result.exit(dbutils)
