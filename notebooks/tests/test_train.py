# Databricks notebook source
# MAGIC %md
# MAGIC # Test: the `train` task (nutter)
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


class TrainFixture(NutterFixture):
    def before_all(self):
        self.scratch = notebook.Scratch(dbutils, "train")
        self.scratch.run(spark, 'bronze', 'silver', 'gold_features')

    def run_train(self):
        run_task(spark, self.scratch.settings, "train")

    def assertion_train(self):
        metrics = spark.table(self.scratch.settings.tables.clustering_metrics)
        assert metrics.count() == 2  # kmeans, k = 2..3
        assert metrics.where("is_champion").count() == 1

    def after_all(self):
        self.scratch.drop(spark)


# COMMAND ----------

result = TrainFixture().execute_tests()
print(result.to_string())
if notebook.is_databricks():
    result.exit(dbutils)
