# Databricks notebook source
# MAGIC %md
# MAGIC # Test: the `publish` task (nutter)
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


class PublishFixture(NutterFixture):
    def before_all(self):
        self.scratch = notebook.Scratch(dbutils, "publish")
        self.scratch.run(spark, 'bronze', 'silver', 'gold_features', 'train', 'lifetime_value')

    def run_publish(self):
        run_task(spark, self.scratch.settings, "publish")

    def assertion_publish(self):
        tables = self.scratch.settings.tables
        segments = spark.table(tables.customer_segments)
        assert segments.count() == spark.table(tables.customer_features).count()
        assert segments.where("segment_name IS NULL").count() == 0
        assert spark.table(tables.segment_history).select("as_of_date").distinct().count() == 1

    def after_all(self):
        self.scratch.drop(spark)


# COMMAND ----------

result = PublishFixture().execute_tests()
print(result.to_string())
if notebook.is_databricks():
    result.exit(dbutils)
