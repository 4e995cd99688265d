"""Reference: the floor, the least a Spark + Delta medallion pipeline does on the same files.

Bronze: the CSV files read with an explicit all-string schema, plus the source file and the
ingestion time, appended to a Delta table. Silver: typed, valid (a customer, a date, a non-zero
quantity, a positive price), de-duplicated lines to a Delta table. Gold: net RFM per customer to a
Delta table. Eight shuffle partitions, nothing else: no streams, no quarantine, no reconciliation,
no other tables. Each layer is timed on its own, reading the table the layer before it wrote.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
SHUFFLE_PARTITIONS = 8


def run(spark: SparkSession, landing: str, root: str) -> dict:
    paths = {layer: f"{root}/{layer}" for layer in ("bronze", "silver", "gold")}
    timings = {}

    started = time.perf_counter()
    schema = ", ".join(f"`{c}` string" for c in COLUMNS)
    (spark.read.csv(landing, header=True, schema=schema)
     .withColumn("_source_file", F.col("_metadata.file_path")).withColumn("_ingested_at", F.current_timestamp())
     .write.format("delta").mode("append").save(paths["bronze"]))
    timings["bronze"] = time.perf_counter() - started

    started = time.perf_counter()
    typed = spark.read.format("delta").load(paths["bronze"]).select(
        "InvoiceNo", "StockCode", "Description", F.col("Quantity").try_cast("int").alias("quantity"),
        F.try_to_timestamp("InvoiceDate").alias("invoice_ts"), F.col("UnitPrice").try_cast("double").alias("price"),
        F.regexp_replace("CustomerID", r"\.0$", "").alias("customer_id"), "Country")
    valid = typed.where("customer_id IS NOT NULL AND invoice_ts IS NOT NULL AND quantity != 0 AND price > 0")
    valid.dropDuplicates().write.format("delta").mode("append").save(paths["silver"])
    timings["silver"] = time.perf_counter() - started

    started = time.perf_counter()
    orders = spark.read.format("delta").load(paths["silver"])
    reference = orders.agg(F.date_add(F.to_date(F.max("invoice_ts")), 1)).first()[0]
    (orders.groupBy("customer_id").agg(
        F.datediff(F.lit(reference), F.max("invoice_ts")).alias("recency"),
        F.count_distinct(F.when(~F.col("InvoiceNo").startswith("C"), F.col("InvoiceNo"))).alias("frequency"),
        F.sum(F.col("quantity") * F.col("price")).alias("monetary"))
     .write.format("delta").mode("append").save(paths["gold"]))
    timings["gold"] = time.perf_counter() - started
    customers = spark.read.format("delta").load(paths["gold"]).count()
    return {"customers": customers, "timings": timings}


def session() -> SparkSession:
    """Local Spark with Delta from the jars `make` fetched (the product's jars folder)."""
    jars = sorted(str(p) for p in Path(os.environ["CUSTOMER_SEGMENTATION_JARS_DIR"]).glob("delta-*.jar"))
    return (SparkSession.builder.master("local[*]").appName("floor-reference")
            .config("spark.ui.enabled", "false").config("spark.driver.memory", "3g")
            .config("spark.driver.extraClassPath", os.pathsep.join(jars)).config("spark.jars", ",".join(jars))
            .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
            .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
            .config("spark.sql.shuffle.partitions", str(SHUFFLE_PARTITIONS)).getOrCreate())


if __name__ == "__main__":
    spark = session()
    spark.sparkContext.setLogLevel("ERROR")
    with tempfile.TemporaryDirectory(prefix="floor-") as folder:
        print(json.dumps(run(spark, sys.argv[1], folder)))
