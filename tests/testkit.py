"""Helpers shared by tests (importable because pytest puts tests/ on the path)."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow

from customer_segmentation.core.delta import overwrite_table
from customer_segmentation.core.rules import rfm_rules
from customer_segmentation.core.tables import table
from customer_segmentation.gold.rfm import rfm_segments
from customer_segmentation.models import tracking

REPO = Path(__file__).resolve().parents[1]

FIGURES = {"elbow_wcss.png", "metrics_by_k.png", "segment_sizes.png", "segment_profile_heatmap.png",
           "segment_box_plots.png", "segment_projection.png", "clustering_metrics.csv"}
# Few candidates keep the fault-suite jobs short; what they check does not depend on the model search.
SMALL_JOB = {"k_min": 2, "k_max": 2, "algorithms": ("kmeans",), "kmeans_starts": 1}
FOUR_METRICS = {"silhouette_sq_euclidean", "davies_bouldin", "calinski_harabasz", "wcss"}
CUSTOMER_FEATURES, RFM_SEGMENTS = table("customer_features").spec(), table("rfm_segments").spec()


def features_table(spark, settings, rows):
    """Write a hand-made gold.customer_features: rows of (customer, recency, frequency, monetary)."""
    records = []
    for customer, recency, frequency, monetary in rows:
        records.append((customer, recency, frequency, float(monetary), float(monetary), 0.0,
                        float(monetary) / max(frequency, 1), dt.date(2011, 1, 1), dt.date(2011, 12, 1), 300,
                        frequency, 0.0, 30.0, "United Kingdom", dt.date(2011, 12, 10)))
    schema = CUSTOMER_FEATURES.schema
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {settings.catalog}.{settings.gold_schema}")
    overwrite_table(spark, settings.tables.customer_features, spark.createDataFrame(records, schema), CUSTOMER_FEATURES)
    segments = rfm_segments(spark.table(settings.tables.customer_features), rfm_rules(), "No Net Purchases")
    overwrite_table(spark, settings.tables.rfm_segments, segments, RFM_SEGMENTS)


def parent_and_children(settings, task: str = "train"):
    """The task's top-level runs (latest first), the latest, and its nested runs."""
    tracking.configure(settings)
    experiment = mlflow.get_experiment_by_name(settings.experiment_name)
    runs = mlflow.search_runs([experiment.experiment_id], output_format="list", order_by=["start_time DESC"])
    parents = [r for r in runs if r.data.tags.get(tracking.TASK_TAG) == task]
    latest = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == latest.info.run_id]
    return parents, latest, children


def check_tracking(settings, grid_size):
    parents, parent, children = parent_and_children(settings)
    assert len(children) == grid_size
    trained = [r for r in children if "skipped_reason" not in r.data.tags]
    assert trained and all(FOUR_METRICS <= set(r.data.metrics) for r in trained)
    assert {(r.data.params["algorithm"], int(r.data.params["k"])) for r in children} == {
        (a, k) for a in settings.algorithms for k in range(settings.k_min, settings.k_max + 1)}
    for key in ("source", "as_of_date", "features", "k_min", "k_max", "algorithms", "seed", "feature_table_version"):
        assert key in parent.data.params
    figures = {a.path.split("/")[-1] for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id, "figures")}
    assert FIGURES <= figures
    # A candidate keeps what fits it again (test_training: a k-means candidate is the full fit of
    # its start's seed), not its model: only the champion's model is logged.
    assert not any(mlflow.MlflowClient().list_artifacts(r.info.run_id) for r in children)
    kmeans = [r for r in trained if r.data.params["algorithm"] == "kmeans"]
    assert kmeans and all("start_seed" in r.data.params for r in kmeans)
    version = mlflow.MlflowClient().get_model_version_by_alias(settings.model_name, "champion")
    assert version.run_id == parent.info.run_id
    assert mlflow.MlflowClient().get_model_version(settings.model_name, version.version).status == "READY"
    return parent, version


def report_section(page: str, section_id: str) -> str:
    """The HTML of the report's section `section_id`, up to its closing tag (sections do not nest)."""
    start = page.index(f'<section id="{section_id}">')
    return page[start:page.index("</section>", start)]


def copy_files(files, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for file in files:
        shutil.copy(file, destination / Path(file).name)


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m customer_segmentation ...` in a separate process."""
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "customer_segmentation", *args], cwd=cwd or REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def settings_flags(settings) -> list[str]:
    """CLI flags that reproduce the given settings in another process."""
    flags = []
    for name, value in settings.to_params().items():
        flags += [f"--{name.replace('_', '-')}", value]
    return flags


# Comparing table contents across runs, lineage columns set aside.
LINEAGE = {"_ingested_at", "processed_at", "run_id", "model_name", "model_version", "training_run_id", "mlflow_run_id",
           "candidate_run_id", "_line_id", "batch_id"}
# Contents per table; quality_log is per micro-batch, so only its totals are compared.
SKIP = {"quality_log"}
HISTORY = {"clustering_metrics", "segment_history", "clv_model_parameters", "clv_validation"}


def _normalise(value, landing_dirs):
    if isinstance(value, float):  # NaN != NaN: compared by name
        return "NaN" if value != value else float(f"{value:.9g}")
    if isinstance(value, str):
        for folder in landing_dirs:
            value = value.replace(folder, "<landing>")
        return re.sub(r"file:/+", "file:/", value)
    if isinstance(value, (list, tuple)):
        return tuple(_normalise(v, landing_dirs) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _normalise(v, landing_dirs)) for k, v in value.items()))
    return value


def table_paths(settings) -> dict[str, Path]:
    """Short name -> folder of each Delta table of the job in the local warehouse under its state root."""
    warehouse = Path(settings.state_root) / "warehouse"
    return {short: warehouse / f"{name.split('.')[-2]}.db" / name.split(".")[-1]
            for short, name in settings.tables.delta_tables().items()}


def table_versions(settings) -> dict[str, int]:
    """Every existing table's Delta version: any write would move one."""
    from deltalake import DeltaTable

    return {short: DeltaTable(str(path)).version() for short, path in table_paths(settings).items()
            if (path / "_delta_log").is_dir()}


def snapshot(settings, landing_dirs: list[str]) -> dict:
    """The contents of each Delta table of the job, from the warehouse under its state root.

    Read with delta-rs, an outside reader: a snapshot of a small job's tables takes about a second,
    against 6-40 s through Spark's planner (BENCHMARKS.md)."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    result = {}
    for short, path in table_paths(settings).items():
        if short in SKIP:
            continue
        rows = DeltaTable(str(path)).to_pyarrow_table()
        if short in HISTORY:  # compare the snapshot of the latest reference date
            rows = rows.filter(pc.equal(rows["as_of_date"], pc.max(rows["as_of_date"])))
        keep = rows.select([c for c in rows.column_names if c not in LINEAGE])
        result[short] = sorted(tuple(_normalise(v, landing_dirs) for v in row.values())
                               for row in keep.to_pylist(maps_as_pydicts="strict"))
    return result


def quality_totals(df) -> tuple[int, int, int]:
    rows = df.collect()
    return tuple(sum(r[c] for r in rows) for c in ("lines_in", "lines_out", "lines_rejected"))


def settings_for_job(tmp_path_factory, session_state, prefix: str, landing: Path, **overrides):
    """Settings of a whole job in schemas of its own (`prefix`), reading `landing`."""
    from customer_segmentation.core.settings import Settings

    root = tmp_path_factory.mktemp(prefix)
    return Settings(
        bronze_schema=f"{prefix}_bronze", silver_schema=f"{prefix}_silver", gold_schema=f"{prefix}_gold",
        state_root=str(session_state), checkpoint_root=str(root / "checkpoints"), landing_path=str(landing),
        experiment_name=f"{prefix}_experiment", model_name=f"{prefix}_model", clv_model_name=f"{prefix}_clv",
        **overrides)
