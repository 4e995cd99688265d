"""What people see: the HTML report, the saved SQL queries and the sql command."""

import base64
import re
import shutil
from html.parser import HTMLParser

import pytest

from customer_segmentation.core.console import whole
from customer_segmentation.gold.features import RULE_SEGMENT_ID
from customer_segmentation.models import tracking
from customer_segmentation.ops.cli import main
from customer_segmentation.report import page as report
from testkit import REPO, parent_and_children, report_section, settings_flags

SECTIONS = ["segments", "profiles", "slipping", "migration", "rfm", "model", "quality", "insights"]
QUERIES = sorted((REPO / "queries").glob("*.sql"))
# Saved queries that may rightly find nothing on the small generated data: it has no valuable customer
# slipping away (the real data has 82: test_real_data.py); they must list what their view holds.
MAY_BE_EMPTY = {"at_risk_high_value": "high_value_at_risk"}


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections, self.images, self.cards, self.links = [], [], 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs.get("id"))
        if tag == "img":
            self.images.append((attrs.get("alt"), attrs.get("src", "")))
        if tag == "div" and "card" in (attrs.get("class") or "").split():
            self.cards += 1
        if tag in ("script", "link") or (tag == "a" and "href" in attrs):
            self.links.append(tag)


@pytest.fixture(scope="module")
def built_report(spark, synthetic_job):
    settings, _ = synthetic_job
    path = report.build(spark, settings)
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return settings, path, page


def test_report_has_every_section_in_a_marketers_order(built_report):
    _, path, page = built_report
    assert path.name == "index.html" and path.parent.name == "report"
    assert page.sections == SECTIONS
    assert not page.links, "the page needs no network: no scripts, stylesheets or links"
    # The job's only snapshot: no movement to show yet, and the page says why (three snapshots: test_incremental).
    text = path.read_text(encoding="utf-8")
    migration = report_section(text, "migration")
    assert "This is the first snapshot" in migration and "<img" not in migration and "<table" not in migration


def test_one_card_per_segment_with_action(spark, built_report):
    settings, path, page = built_report
    profiles = spark.table(settings.tables.segment_profiles).toPandas()
    assert page.cards == len(profiles)
    text = path.read_text(encoding="utf-8")
    for row in profiles.itertuples():
        assert row.segment_name.replace("'", "&#x27;") in text
        if row.segment_id == RULE_SEGMENT_ID:  # its description does not state its medians: its card does
            orders, days = whole(row.median_frequency), whole(row.median_recency_days)
            assert f" · {orders} order{'' if orders == '1' else 's'} · last purchase or return {days} days ago" in text
    assert text.count("Recommended:") == len(profiles)
    # A model segment's description states its medians: its card does not repeat them.
    assert text.count("last purchase or return") == (profiles["segment_id"] == RULE_SEGMENT_ID).sum()
    assert text.count("Mostly ") == (profiles["segment_id"] != RULE_SEGMENT_ID).sum()


def test_a_table_of_numbers_alone_keeps_whole_numbers_whole():
    import pandas as pd

    frame = pd.DataFrame({"top_percent": [1, 5], "customers": [44, 1219], "share_of_net_revenue": [0.304, 0.49]})
    assert report.table(frame, {"top_percent": "{}%", "customers": "{:,}"})["rows"] == [
        ["1%", "44", "0.304"], ["5%", "1,219", "0.49"]]  # 44.0 customers before


def test_the_months_the_data_starts_and_ends_in_are_hatched_and_named(monkeypatch, tmp_path):
    import datetime as dt

    import pandas as pd

    from customer_segmentation.publish import figures

    drawn = []
    monkeypatch.setattr(figures, "save", lambda fig, path: drawn.append(fig) or path)
    monthly = pd.DataFrame({"month": [dt.date(2011, 10, 1), dt.date(2011, 11, 1), dt.date(2011, 12, 1)],
                            "days_counted": [12, 30, 9], "net_revenue": [3.1e5, 1.4e6, 4.4e5],
                            "active_customers": [700, 1660, 614], "new_customers": [700, 323, 41]})
    figures.monthly_revenue(monthly, tmp_path / "monthly.png", "GBP")
    axes = drawn[0].axes[0]
    assert [bar.get_hatch() for bar in axes.containers[0]] == ["//", None, "//"]
    assert len(axes.patches) == 5, "the two short months shaded behind the bars"
    named = [text.get_text() for text in axes.get_legend().get_texts()]
    assert "2011-10: 12 of its 31 days" in named and "2011-12: 9 of its 31 days" in named
    assert "2011-10: the data's first month, so every customer counts as new" in named



def test_a_customers_purchase_chance_is_never_written_past_its_band():
    import pandas as pd

    from customer_segmentation.report.page import cut_to_tenths

    # 19.996% is "likely lost" (under 20%): rounded it read 20.0%, the bound of "at risk".
    cut = cut_to_tenths(pd.Series([0.19996, 0.57, 0.218, 0.5]))
    assert [f"{share:.1%}" for share in cut] == ["19.9%", "57.0%", "21.8%", "50.0%"]

def test_every_image_is_embedded_and_is_a_png(built_report):
    _, _, page = built_report
    assert len(page.images) >= 13
    for alt, src in page.images:
        assert src.startswith("data:image/png;base64,"), alt
        data = base64.b64decode(src.split(",", 1)[1])
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000, alt


def test_report_reuses_the_figures_logged_to_mlflow(built_report, tmp_path):
    import mlflow

    settings, path, _ = built_report
    text = path.read_text(encoding="utf-8")
    assert "Figure not available" not in text
    tracking.configure(settings)
    version = mlflow.MlflowClient().get_model_version_by_alias(settings.model_name, "champion")
    _, _, [validation] = parent_and_children(settings, task="lifetime_value")
    for run_id, figure in ((version.run_id, "figures/segment_profile_heatmap.png"),
                           (validation.info.run_id, "figures/holdout_cumulative_purchases.png")):
        logged = tracking.download_run_artifacts(run_id, figure, tmp_path / run_id)
        assert base64.b64encode(logged.read_bytes()).decode() in text, figure


@pytest.mark.parametrize("query", QUERIES, ids=lambda p: p.stem)
def test_each_saved_query_runs_and_returns_rows(spark, synthetic_job, capsys, query):
    settings, _ = synthetic_job
    assert main(["sql", "--file", str(query), *settings_flags(settings)]) == 0
    out = capsys.readouterr().out
    count = int(re.search(r"^(\d+) row\(s\)", out, re.MULTILINE).group(1))
    if query.stem in MAY_BE_EMPTY:
        assert count == spark.table(f"{settings.catalog}.{settings.gold_schema}.{MAY_BE_EMPTY[query.stem]}").count()
    else:
        assert count > 0, out


def test_sql_by_layer_names_and_a_failing_query_is_one_line(synthetic_job, capsys):
    settings, _ = synthetic_job
    assert main(["sql", "SELECT count(*) AS n FROM ${gold}.customer_segments", *settings_flags(settings)]) == 0
    assert "1 row(s)" in capsys.readouterr().out
    assert main(["sql", "SELECT * FROM ${gold}.no_such_table", *settings_flags(settings)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: query failed:") and "no_such_table" in err[0]


def test_help_explains_every_option_with_its_default(capsys):
    for command in (["run"], ["task"], ["sql"], ["report"], ["generate"], ["upload"], ["trigger"], ["check-bundle"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        text = capsys.readouterr().out
        options = re.findall(r"^\s+(--[a-z-]+)", text, re.MULTILINE)
        assert options, command
        assert "default" in text, command
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "(default: 10)" in capsys.readouterr().out  # k-max


@pytest.fixture(scope="module")
def chromium():
    from customer_segmentation.report import browser

    if browser.chromium() is None:
        pytest.skip(f"browser tests skipped: {browser.MISSING}")
    with browser.browser() as launched:
        yield launched


@pytest.mark.parametrize("width", [1280, 390], ids=["laptop", "phone"])
def test_the_report_in_a_real_browser(built_report, chromium, width):
    from customer_segmentation.report.browser import open_page

    _, path, page = built_report
    tab, errors = open_page(chromium, path, width)
    assert errors == []
    undecoded = tab.evaluate("[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt)")
    assert len(page.images) == tab.evaluate("document.images.length") and undecoded == []
    too_wide = tab.evaluate(f"""[...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > {width} + 0.5 && !e.closest('.scroll'))
        .map(e => e.tagName + '.' + e.className)""")
    assert too_wide == [] and tab.evaluate("document.documentElement.scrollWidth") <= width, too_wide[:5]
    visible = tab.evaluate("[...document.querySelectorAll('.card')].filter(c => c.offsetWidth > 0 && "
                           "c.offsetHeight > 0).length")
    assert visible == page.cards > 0
    tab.screenshot(path=str(path.parent / f"screenshot-{width}.png"), full_page=True)
    assert (path.parent / f"screenshot-{width}.png").stat().st_size > 10_000


def test_the_report_prints_with_every_card_whole(built_report, chromium, tmp_path):
    import subprocess

    from customer_segmentation.report.browser import open_page

    _, path, page = built_report
    tab, _ = open_page(chromium, path, 1280)
    tab.emulate_media(media="print")
    kept_whole = tab.evaluate("[...document.querySelectorAll('.card, img, tr')].every(e => "
                              "getComputedStyle(e).breakInside === 'avoid')")
    assert kept_whole
    pdf = tmp_path / "report.pdf"
    tab.pdf(path=str(pdf), format="A4", print_background=True)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-r", "30", "-png", str(pdf), str(tmp_path / "page")], check=True)
        assert len(list(tmp_path.glob("page*.png"))) >= 2
