"""The AI/BI dashboard in the bundle, checked offline: built from the saved queries, every widget
reading a dataset the file defines and fields its query names. (The datasets run against the real
tables in tests/integration/test_real_data.py.)"""

import json
import re
import shutil

import yaml

from customer_segmentation.ops.bundle_check import check_bundle
from customer_segmentation.publish import dashboard
from testkit import REPO


def widgets(content):
    for page in content["pages"]:
        for item in page["layout"]:
            yield page, item["widget"], item["position"]


def test_the_committed_dashboard_is_what_the_saved_queries_build():
    committed = dashboard.DASHBOARD_FILE.read_text(encoding="utf-8")
    assert committed == dashboard.render(), "run: python -m customer_segmentation.publish.dashboard"
    for dataset in json.loads(committed)["datasets"]:
        sql = "".join(dataset["queryLines"])
        saved = (REPO / "queries" / f"{dataset['name']}.sql").read_text(encoding="utf-8")
        assert "${" not in sql and "--" not in sql
        assert re.sub(r"\s+", " ", sql).strip() in re.sub(r"\s+", " ", saved.replace("${gold}.", ""))


def test_every_widget_reads_a_dataset_and_fields_its_query_names():
    content = json.loads(dashboard.DASHBOARD_FILE.read_text(encoding="utf-8"))
    sql = {d["name"]: "".join(d["queryLines"]) for d in content["datasets"]}
    used = set()
    for page, widget, position in widgets(content):
        [query] = widget["queries"]
        name = query["query"]["datasetName"]
        used.add(name)
        assert name in sql, (page["name"], widget["name"])
        fields = [f["name"] for f in query["query"]["fields"]]
        for field in fields:
            assert re.search(rf"\b{field}\b", sql[name]), (widget["name"], field)
        encoded = json.dumps(widget["spec"]["encodings"])
        assert all(f'"fieldName": "{f}"' in encoded for f in fields), widget["name"]
        assert 0 <= position["x"] and position["x"] + position["width"] <= dashboard.WIDTH
    assert used == set(sql), "no dataset without a widget"
    pages = {p["displayName"] for p in content["pages"]}
    assert {"Segments", "Segment profiles", "Who is slipping away", "Customers to act on",
            "Movement between snapshots", "Data quality", "Revenue trends"} == pages
    filters = {(p["name"], w["spec"]["encodings"]["fields"][0]["fieldName"]) for p, w, _ in widgets(content)
               if w["spec"]["widgetType"].startswith("filter")}
    assert {("act_on", "segment_name"), ("act_on", "main_country"), ("movement", "to_date")} <= filters


def test_no_widget_reads_below_gold():
    for name in {w["queries"][0]["query"]["datasetName"] for _, w, _ in
                 widgets(json.loads(dashboard.DASHBOARD_FILE.read_text(encoding="utf-8")))}:
        assert "${silver}" not in (REPO / "queries" / f"{name}.sql").read_text(encoding="utf-8")


def test_the_bundle_deploys_it_on_a_warehouse_found_by_name_for_the_analysts():
    resource = yaml.safe_load((REPO / "resources" / "customer_segmentation.dashboard.yml").read_text())
    spec = resource["resources"]["dashboards"]["customer_segmentation"]
    assert spec["warehouse_id"] == "${var.warehouse_id}" and spec["embed_credentials"] is False
    assert spec["dataset_schema"] == "${resources.schemas.gold.name}"
    assert spec["permissions"] == [{"group_name": "${var.analysts_group}", "level": "CAN_RUN"}]
    variables = yaml.safe_load((REPO / "databricks.yml").read_text())["variables"]
    assert "warehouse" in variables["warehouse_id"]["lookup"]
    assert check_bundle(REPO) == [] and check_bundle(REPO, "prod") == []


def test_a_widget_on_an_unknown_dataset_is_reported(tmp_path):
    root = tmp_path / "bundle"
    shutil.copytree(REPO, root, ignore=shutil.ignore_patterns(".git", ".venv", ".local", "dist", "*.egg-info"))
    path = root / "src" / "dashboards" / "customer_segmentation.lvdash.json"
    content = json.loads(path.read_text())
    content["datasets"] = [d for d in content["datasets"] if d["name"] != "monthly_trends"]
    path.write_text(json.dumps(content))
    problems = [str(p) for p in check_bundle(root)]
    assert problems and all("reads unknown dataset 'monthly_trends'" in p for p in problems), problems
