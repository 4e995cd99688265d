"""Security: no credentials anywhere, identifiers validated, customer-level data stays in gold."""

import json
import re
import subprocess

import mlflow
import pytest

from customer_segmentation.models import tracking
from testkit import REPO, parent_and_children

pytestmark = pytest.mark.faults

SECRET_PATTERNS = [
    re.compile(r"dapi[0-9a-f]{32}"),                        # Databricks personal access token
    re.compile(r"AKIA[0-9A-Z]{16}"),                        # AWS access key
    re.compile(r"-----BEGIN (RSA |EC )?PRIVATE KEY-----"),
    re.compile(r"(?i)(token|password|secret)\s*[:=]\s*['\"][A-Za-z0-9/+]{16,}['\"]"),
]


def test_no_credentials_in_the_repository():
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    assert files
    for name in files:
        path = REPO / name
        if not path.is_file() or path.suffix in (".png", ".jar"):
            continue
        text = path.read_text(errors="ignore")
        for pattern in SECRET_PATTERNS:
            assert not pattern.search(text), f"{name} matches {pattern.pattern}"


def test_mlflow_params_and_artifacts_hold_no_credentials_and_no_customer_rows(spark, small_reference, tmp_path):
    settings = small_reference
    parents, parent, children = parent_and_children(settings)
    for run in [parent, *children]:
        for key, value in {**run.data.params, **run.data.tags}.items():
            assert not re.search(r"(?i)token|password|secret", key), key
            assert not any(p.search(str(value)) for p in SECRET_PATTERNS), key
    features = spark.table(settings.tables.customer_features)
    customer_ids = {r["customer_id"] for r in features.select("customer_id").collect()}
    folder = tracking.download_run_artifacts(parent.info.run_id, "", tmp_path / "artifacts")
    checked = 0
    for path in folder.rglob("*"):
        if path.suffix in (".csv", ".json", ".txt", ".yaml") or path.name == "MLmodel":
            text = path.read_text(errors="ignore")
            tokens = set(re.findall(r"\b\d{4,6}\b", text))
            assert not tokens & customer_ids, f"{path.name} holds customer IDs"
            checked += 1
    assert checked >= 4
    model = (folder / "model" / "MLmodel").read_text()
    assert "input_example" not in model and "signature" in model


def test_mlflow_run_parameters_are_settings_not_environment(small_reference):
    settings = small_reference
    _, parent, _ = parent_and_children(settings)
    allowed = {"source", "source_profile", "as_of_date", "features", "features_dropped", "k_min", "k_max",
               "algorithms", "kmeans_starts", "seed", "customers", "customers_without_net_purchases",
               "search_customers", "feature_table", "feature_table_version", "selection_rule", "job_run_id"}
    assert set(parent.data.params) <= allowed
    assert json.loads(json.dumps(parent.data.params))  # plain strings only
    assert mlflow.get_tracking_uri().startswith("sqlite:")
