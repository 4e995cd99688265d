"""Table writers: a first write creates the table with its comments, later writes replace rows."""

from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType

from customer_segmentation.tables import Column, TableSpec, ensure_schemas, overwrite_table, rows_in_last_commit

SPEC = TableSpec(comment="Test table", columns=(
    Column("batch", IntegerType(), "Which write the row came from"),
    Column("label", StringType(), "A label"),
))


def rows(spark, batch, labels):
    # Columns in another order and wider types than the spec: the writer conforms them.
    return spark.createDataFrame([(label, batch) for label in labels], "label string, batch long")


def test_the_first_write_creates_the_table_and_later_ones_replace_all_or_only_the_matching_rows(
        spark, make_settings):
    settings = make_settings()
    ensure_schemas(spark, settings)
    name = f"{settings.catalog}.{settings.gold_schema}.written"

    overwrite_table(spark, name, rows(spark, 1, ["a", "b", "c"]), SPEC)
    assert sorted(spark.table(name).collect()) == [(1, "a"), (1, "b"), (1, "c")]
    assert rows_in_last_commit(spark, name) == 3
    described = {r["col_name"]: r["comment"] for r in spark.sql(f"DESCRIBE TABLE {name}").collect()}
    assert described["batch"] == "Which write the row came from"

    overwrite_table(spark, name, rows(spark, 2, ["d"]), SPEC)
    assert spark.table(name).collect() == [(2, "d")], "a second write replaces every row"

    overwrite_table(spark, name, rows(spark, 3, ["e", "f"]), SPEC, replacing=F.col("batch") == 3)
    overwrite_table(spark, name, rows(spark, 3, ["g"]), SPEC, replacing=F.col("batch") == 3)
    assert sorted(spark.table(name).collect()) == [(2, "d"), (3, "g")], "only the matching rows are replaced"
    history = spark.sql(f"DESCRIBE HISTORY {name}").orderBy("version").select("operation").collect()
    assert [r[0] for r in history] == ["CREATE TABLE"] + ["WRITE"] * 4, "one commit per write"
