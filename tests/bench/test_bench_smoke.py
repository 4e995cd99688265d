"""The benchmark harness and both references run (timings themselves belong to `make bench`)."""

import re
import sys

import pytest

from bench import naive_pyspark, pandas_sklearn
from bench.__main__ import NOT_RUN, SAMPLE_SECONDS, commit, measure, table


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


def test_naive_pyspark_reference_runs(spark, tiny):
    result = naive_pyspark.run(spark, str(tiny), 2, 3, seed=1)
    assert result["customers"] > 30 and set(result["scores"]) == {2, 3}


def test_harness_measures_time_and_memory_of_a_process_tree():
    # Alive for more than two sample intervals, so at least one sample sees the allocation.
    lifetime = 2.5 * SAMPLE_SECONDS
    result = measure([sys.executable, "-c", f"import time; x = bytearray(200_000_000); time.sleep({lifetime})"])
    assert result["exit_code"] == 0 and result["seconds"] >= lifetime and result["peak_rss_gib"] >= 0.15
    failed = measure([sys.executable, "-c", "raise SystemExit(3)"])
    assert failed["exit_code"] == 3
    row = {"size": "tiny", "lines": 1000, "ratio_naive": 0.5, "ratio_pandas": None,
           "product": {**result, "tasks": {"bronze": 1.0}}, "naive_pyspark": result, "pandas_sklearn": failed}
    markdown = table([row])
    assert "| tiny | 1,000 |" in markdown and "failed (3)" in markdown
    product_only = table([{**row, "naive_pyspark": NOT_RUN, "pandas_sklearn": NOT_RUN, "ratio_naive": None}])
    assert product_only.count("not run") == 2


def test_results_name_the_commit_measured():
    assert re.fullmatch(r"[0-9a-f]{7,}( with uncommitted changes)?", commit())
