# Databricks notebook source
# MAGIC %md
# MAGIC # Test: the `bronze` task (nutter)
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


class BronzeFixture(NutterFixture):
    def before_all(self):
        self.scratch = notebook.Scratch(dbutils, "bronze")

    def run_ingest(self):
        self.written = run_task(spark, self.scratch.settings, "bronze").rows_written

    def assertion_ingest(self):
        table = self.scratch.settings.tables.transactions_raw
        assert self.written[table] == self.scratch.lines > 0
        assert spark.table(table).where("_raw_line IS NULL OR _source_file IS NULL").count() == 0

    def run_rerun_adds_nothing(self):
        self.again = run_task(spark, self.scratch.settings, "bronze").rows_written

    def assertion_rerun_adds_nothing(self):
        assert self.again[self.scratch.settings.tables.transactions_raw] == 0

    def after_all(self):
        self.scratch.drop(spark)


# COMMAND ----------

result = BronzeFixture().execute_tests()
print(result.to_string())
if notebook.is_databricks():
    result.exit(dbutils)
