"""The AI/BI (Lakeview) dashboard the bundle deploys, built from the saved queries in `queries/`.

One source: each dataset of the dashboard is a saved query with `${gold}.` removed; the bundle's
dashboard resource sets `dataset_catalog` and `dataset_schema` to the gold schema of the target,
so the same SQL runs against the names of every target. Only gold is read: analysts are granted
gold alone, and the dashboard runs with the viewer's credentials.

`python -m customer_segmentation.publish.dashboard` rewrites `src/dashboards/customer_segmentation.lvdash.json`;
a test checks the committed file is what this module builds.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
QUERIES = REPO / "queries"
DASHBOARD_FILE = REPO / "src" / "dashboards" / "customer_segmentation.lvdash.json"
WIDTH = 6  # the canvas is six columns wide

PARTIAL_MONTH = "(the first and last months may be partial: days counted in the table)"
# Page -> widgets: (kind, saved query, title, fields). Kinds: bar and line (x, y), table (columns),
# filter (the field filtered, on every dataset of the page that has it).
PAGES = (
    ("segments", "Segments", (
        ("bar", "segment_sizes", "Customers per segment", ("segment_name", "customers")),
        ("bar", "segment_sizes", "Share of net revenue (%)", ("segment_name", "pct_of_net_revenue")),
        ("table", "segment_sizes", "Segments and what to do", ("segment_name", "customers", "pct_of_customers",
                                                               "pct_of_net_revenue", "median_net_revenue",
                                                               "recommended_action")),
    )),
    ("profiles", "Segment profiles", (
        ("table", "segment_profiles", "The typical customer of each segment (medians)", (
            "segment_name", "customers", "median_recency_days", "median_frequency", "median_net_revenue",
            "median_order_value", "median_tenure_days", "description")),
    )),
    ("lifetime_value", "Who is slipping away", (
        ("filter", "churn_risk", "Segment", ("segment_name",)),
        ("bar", "churn_risk", "Customers by churn risk", ("churn_risk", "customers")),
        ("bar", "segment_profiles", "Share of predicted lifetime value (%)", ("segment_name", "pct_of_predicted_clv")),
        ("table", "churn_risk", "Churn risk and predicted value by segment", (
            "segment_name", "churn_risk", "customers", "mean_p_purchase_90d", "predicted_clv")),
    )),
    ("act_on", "Customers to act on", (
        ("filter", "at_risk_high_value", "Segment", ("segment_name",)),
        ("filter", "at_risk_high_value", "Country", ("main_country",)),
        ("table", "at_risk_high_value", "Valuable customers slipping away, most valuable first", (
            "customer_id", "segment_name", "churn_risk", "p_purchase_90d", "predicted_clv", "net_revenue", "orders",
            "recency_days", "last_purchase_date", "main_country")),
    )),
    ("movement", "Movement between snapshots", (
        ("filter", "segment_migration", "Snapshot", ("to_date",)),
        ("table", "segment_migration", "Where customers moved since the previous snapshot", (
            "from_date", "to_date", "from_segment", "to_segment", "customers")),
    )),
    ("quality", "Data quality", (
        ("bar", "data_quality", "Lines received, kept and quarantined", ("outcome", "lines")),
        ("table", "data_quality", "What became of the lines received", (
            "outcome", "lines", "pct_of_lines_received", "lines_received")),
    )),
    ("trends", "Revenue trends", (
        ("line", "monthly_trends", f"Net revenue by month {PARTIAL_MONTH}", ("month", "net_revenue")),
        ("line", "monthly_trends", f"Active customers by month {PARTIAL_MONTH}", ("month", "active_customers")),
        ("table", "monthly_trends", "Month by month", ("month", "days_counted", "net_revenue", "orders",
                                                       "active_customers", "new_customers",
                                                       "last_purchase_this_month")),
    )),
)
HEIGHT = {"filter": 2, "bar": 6, "line": 6, "table": 8}


def dataset_sql(name: str) -> str:
    """The saved query `name` with its comments and the gold schema prefix removed."""
    text = (QUERIES / f"{name}.sql").read_text(encoding="utf-8")
    if "${silver}" in text or "${bronze}" in text:
        raise ValueError(f"queries/{name}.sql reads below gold: analysts cannot read it on the dashboard")
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return re.sub(r"\$\{gold\}\.", "", body).strip() + "\n"


def _title(text: str) -> str:
    return " ".join(word.capitalize() if i == 0 else word for i, word in enumerate(text.replace("_", " ").split()))


def _widget(name: str, kind: str, dataset: str, title: str, fields: tuple[str, ...]) -> dict:
    query = {"name": "main_query", "query": {"datasetName": dataset, "disaggregated": True,
                                             "fields": [{"name": f, "expression": f"`{f}`"} for f in fields]}}
    frame = {"showTitle": True, "title": title}
    if kind == "table":
        spec = {"version": 1, "widgetType": "table", "frame": frame,
                "encodings": {"columns": [{"fieldName": f, "displayName": _title(f)} for f in fields]}}
    elif kind == "filter":
        query["query"]["disaggregated"] = False
        spec = {"version": 2, "widgetType": "filter-multi-select", "frame": frame,
                "encodings": {"fields": [{"fieldName": fields[0], "displayName": title, "queryName": "main_query"}]}}
    else:
        x, y = fields
        spec = {"version": 3, "widgetType": kind, "frame": frame, "encodings": {
            "x": {"fieldName": x, "displayName": _title(x),
                  "scale": {"type": "temporal" if kind == "line" else "categorical"}},
            "y": {"fieldName": y, "displayName": _title(y), "scale": {"type": "quantitative"}}}}
    return {"name": name, "queries": [query], "spec": spec}


def build() -> dict:
    used = sorted({widget[1] for _, _, widgets in PAGES for widget in widgets})
    datasets = [{"name": name, "displayName": _title(name), "queryLines": dataset_sql(name).splitlines(keepends=True)}
                for name in used]
    pages = []
    for page, display_name, widgets in PAGES:
        layout, x, y, row_height = [], 0, 0, 0
        for index, (kind, dataset, title, fields) in enumerate(widgets):
            width = {"filter": 2, "bar": 3, "line": 3}.get(kind, WIDTH)
            if x + width > WIDTH:  # next row
                x, y, row_height = 0, y + row_height, 0
            layout.append({"widget": _widget(f"{page}_{index}", kind, dataset, title, fields),
                           "position": {"x": x, "y": y, "width": width, "height": HEIGHT[kind]}})
            x, row_height = x + width, max(row_height, HEIGHT[kind])
        pages.append({"name": page, "displayName": display_name, "pageType": "PAGE_TYPE_CANVAS", "layout": layout})
    return {"datasets": datasets, "pages": pages}


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


if __name__ == "__main__":
    DASHBOARD_FILE.parent.mkdir(parents=True, exist_ok=True)
    DASHBOARD_FILE.write_text(render(), encoding="utf-8")
    print(f"wrote {DASHBOARD_FILE.relative_to(REPO)}", file=sys.stderr)
