# Databricks notebook source
# MAGIC %md
# MAGIC # Test: the `lifetime_value` task (nutter)
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


class LifetimeValueFixture(NutterFixture):
    def before_all(self):
        self.scratch = notebook.Scratch(dbutils, "lifetime_value")
        self.scratch.run(spark, 'bronze', 'silver', 'gold_features')

    def run_lifetime_value(self):
        run_task(spark, self.scratch.settings, "lifetime_value")

    def assertion_lifetime_value(self):
        tables = self.scratch.settings.tables
        values = spark.table(tables.customer_lifetime_value)
        assert values.count() == spark.table(tables.customer_features).count()
        assert values.where("p_alive IS NULL OR churn_risk IS NULL").count() == 0
        fit = spark.table(tables.clv_model_parameters).first()
        assert fit["r"] is not None and fit["r"] > 0, fit["not_fitted_reason"]
        # Forty customers may not pin Gamma-Gamma down: then no value is predicted, and the reason says why.
        valued = values.where("predicted_clv IS NOT NULL").count()
        assert valued == (values.count() if fit["p"] is not None else 0), fit["not_fitted_reason"]

    def after_all(self):
        self.scratch.drop(spark)


# COMMAND ----------

result = LifetimeValueFixture().execute_tests()
print(result.to_string())
if notebook.is_databricks():
    result.exit(dbutils)
