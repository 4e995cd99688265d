"""The benchmark harness and both references run (timings themselves belong to `make bench`)."""

import re
import sys

import pytest

from bench import floor, pandas_sklearn, pyspark_peer
from bench.__main__ import (
    NOT_RUN,
    SAMPLE_SECONDS,
    commit,
    customers_built,
    customers_table,
    increment_table,
    layers_table,
    measure,
    rows_added,
    table,
    tasks_done,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from customer_segmentation.ops.generate import generate

    out = tmp_path_factory.mktemp("bench")
    generate(out, customers=40, seed=2)
    return out / "transactions"


def test_pandas_reference_runs(tiny):
    result = pandas_sklearn.run(str(tiny), 2, 3, seed=1)
    assert result["customers"] > 30 and set(result["scores"]) == {2, 3}
    assert all(set(s) == {"silhouette", "davies_bouldin", "calinski_harabasz"} for s in result["scores"].values())


def test_pyspark_peer_runs(spark, tiny):
    result = pyspark_peer.run(spark, str(tiny), 2, 3, seed=1)
    assert result["customers"] > 30 and set(result["scores"]) == {2, 3}


def test_floor_writes_each_layer_and_times_it(spark, tiny, tmp_path):
    result = floor.run(spark, str(tiny), str(tmp_path))
    assert 30 < result["customers"] <= 40 and set(result["timings"]) == {"bronze", "silver", "gold"}
    lines = sum(len(f.read_text().splitlines()) - 1 for f in tiny.glob("*.csv"))
    assert spark.read.format("delta").load(str(tmp_path / "bronze")).count() == lines


def test_harness_measures_time_and_memory_of_a_process_tree():
    # Alive for more than two sample intervals, so at least one sample sees the allocation.
    lifetime = 2.5 * SAMPLE_SECONDS
    result = measure([sys.executable, "-c", f"import time; x = bytearray(200_000_000); time.sleep({lifetime})"])
    assert result["exit_code"] == 0 and result["seconds"] >= lifetime and result["peak_rss_gib"] >= 0.15
    failed = measure([sys.executable, "-c", "raise SystemExit(3)"])
    assert failed["exit_code"] == 3
    floor_run = {**result, "detail": {"timings": {"bronze": 0.5, "silver": 2.0, "gold": 1.0}}}
    row = {"size": "tiny", "lines": 1000, "ratio_peer": 0.5, "ratio_pandas": None, "floor": floor_run,
           "product": {**result, "tasks": {"bronze": 1.0, "silver": 3.0, "gold_features": 4.0}},
           "pyspark_peer": result, "pandas_sklearn": failed}
    markdown = table([row])
    assert "| tiny | 1,000 |" in markdown and "failed (3)" in markdown
    assert "| tiny | 1.0 / 0.5 = 2.0 | 3.0 / 2.0 = 1.5 | 4.0 / 1.0 = 4.0 | 8.0 / 3.5 = 2.3 |" in layers_table([row])
    product_only = table([{**row, "pyspark_peer": NOT_RUN, "pandas_sklearn": NOT_RUN, "ratio_peer": None}])
    assert product_only.count("not run") == 2
    assert layers_table([{**row, "floor": NOT_RUN}]).count("\n") == 1, "no floor, no row"
    slower_floor = {**floor_run, "detail": {"timings": {"bronze": 1.0, "silver": 2.0, "gold": 1.0}}}
    repeated = layers_table([{**row, "runs": [(row["product"], floor_run), (row["product"], slower_floor),
                                              (row["product"], failed)]}])
    assert "| tiny | 1.0 / 0.8 = 1.3 (1.0–2.0 in 2 runs) | 3.0 / 2.0 = 1.5 (1.5–1.5 in 2 runs) |" in repeated, \
        "medians of the runs that finished, and the range of their ratios"
    grown = {**row, "product": {**row["product"], "customers": 2000, "peak_rss_gib_by_task": {"train": 1.5},
                                "tasks": {"train": 10.0, "publish": 2.0}}}
    assert "| tiny | 2,000 | 10.0 | 5.00 | 1.5 | 2.0 | 1.00 |" in customers_table([grown])


def test_customers_are_read_from_the_gold_task_line():
    output = ("[gold_features] started\n[gold_features] done in 12.3 s (spark_catalog.g.customer_features +4,371, "
              "spark_catalog.g.value_tiers +4,371)\n[train] done in 1.0 s (nothing written)\n")
    assert customers_built(output) == 4371
    assert customers_built("[gold_features] done in 1.0 s (nothing written)") is None


def test_the_incremental_run_is_read_from_its_tasks_lines():
    output = ("[bronze] done in 14.6 s (spark_catalog.bronze.transactions_raw +955)\n"
              "[silver] done in 22.2 s (spark_catalog.silver.orders +924, "
              "spark_catalog.silver.orders_quarantine +31)\n")
    assert tasks_done(output) == {"bronze": 14.6, "silver": 22.2}
    assert (rows_added(output, "bronze", "transactions_raw"), rows_added(output, "silver", "orders")) == (955, 924)
    row = {"size": "10m", "increment": {"exit_code": 0, "tasks": tasks_done(output), "lines": 955,
                                        "orders_before": 9_801_365}}
    assert "| 10m | 9,801,365 | 955 | 14.6 | 22.2 |" in increment_table([row])
    assert increment_table([{**row, "increment": NOT_RUN}]).count("\n") == 1, "not run, no row"


def test_results_name_the_commit_measured():
    assert re.fullmatch(r"[0-9a-f]{7,}( with uncommitted changes)?", commit())
