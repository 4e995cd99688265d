# Databricks notebook source
# MAGIC %md
# MAGIC # Test: the `silver` task (nutter)
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


class SilverFixture(NutterFixture):
    def before_all(self):
        self.scratch = notebook.Scratch(dbutils, "silver")
        self.scratch.run(spark, 'bronze')

    def run_clean(self):
        run_task(spark, self.scratch.settings, "silver")

    def assertion_clean(self):
        tables = self.scratch.settings.tables
        orders, quarantine = spark.table(tables.orders).count(), spark.table(tables.orders_quarantine).count()
        assert orders + quarantine == spark.table(tables.transactions_raw).count()
        assert orders > 0 and quarantine > 0
        assert spark.table(tables.orders_quarantine).where("reject_reason IS NULL").count() == 0

    def after_all(self):
        self.scratch.drop(spark)


# COMMAND ----------

result = SilverFixture().execute_tests()
print(result.to_string())
if notebook.is_databricks():
    result.exit(dbutils)
