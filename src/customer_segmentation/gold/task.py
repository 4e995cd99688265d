"""Task `gold_features`: customer features, rule-based RFM segments and business insight tables.

The tables are a function of silver's versions, the reference date, the rule files and the code
that builds them: all of that is fingerprinted, and a rerun whose fingerprint matches the
last build keeps the tables as they are. Any change to the code or rules of the layers up to
gold (an upgrade) rebuilds them.
"""

from __future__ import annotations

import hashlib
from contextlib import ExitStack
from pathlib import Path

from pyspark.sql import SparkSession

from ..core.console import say
from ..core.delta import (
    ensure_schemas,
    get_property,
    overwrite_tables,
    set_property,
    table_exists,
    table_version,
)
from ..core.errors import SourceError
from ..core.rules import CONFIG_DIR, rfm_rules, segment_catalogue
from ..core.settings import Settings
from ..core.tables import table
from . import enrichment, features, insights, rfm, value_tiers

BUILT_FROM = "customer_segmentation.built_from"
PACKAGE = Path(__file__).parents[1]
# What gold is built by: the code of every layer up to gold, and the rules it applies.
CODE_FOLDERS = ("core", "ingest", "silver", "gold")
RULE_FILES = ("cleaning.yaml", "rfm_segments.yaml", "segment_names.yaml")


def run(spark: SparkSession, settings: Settings) -> dict[str, int]:
    tables = settings.tables
    orders = spark.table(tables.orders)
    as_of_date = settings.as_of_date
    if as_of_date is not None:
        features.check_as_of_date(orders, as_of_date)
    else:  # the day after the latest invoice, after the first by definition
        as_of_date = features.default_as_of_date(orders)
        if as_of_date is None:
            raise SourceError(f"{tables.orders} has no valid order lines: nothing to build features from "
                              f"(see {tables.orders_quarantine} for why lines were rejected)")
    ensure_schemas(spark, settings)
    sources = settings.sources_in_use
    built_from = fingerprint(spark, settings, as_of_date)
    if _built_from(spark, settings) == built_from:
        say(f"[gold_features] inputs unchanged since the last build ({built_from}): tables kept as they are")
        return {}
    with ExitStack() as cached:
        # The lines gold reads. What counts orders, purchase days, customers or countries reads them
        # summed per invoice, kept while the tables are built; the lines themselves are read again by
        # the two aggregations that need them (keeping them cost more: BENCHMARKS.md).
        lines = features.gold_lines(orders, as_of_date)
        cached.callback(features.invoice_lines(lines).persist().unpersist)
        customer_features = features.customer_features(lines, as_of_date)
        if sources:
            customer_features = enrichment.enrich(
                customer_features,
                enrichment.customer_attributes(spark.table(tables.customers)) if "customers" in sources else None,
                enrichment.engagement_totals(spark.table(tables.engagement), as_of_date) if "engagement" in sources
                else None)
        customer_features = customer_features.persist()
        cached.callback(customer_features.unpersist)
        # The longest first: the tiers (gathered as soon as the features are computed), then top
        # products, the longest chain of Spark jobs. Each table but the shared features is planned
        # in its writing thread, beside the first writes' jobs (planning the ten took about 1.5 s of
        # driver time before any job started).
        rules, without_net_purchases = rfm_rules(), segment_catalogue().without_net_purchases.name
        built = {
            "value_tiers": lambda: value_tiers.value_tiers(customer_features),
            "top_products": lambda: insights.top_products(lines, as_of_date),
            "customer_features": customer_features,
            "rfm_segments": lambda: rfm.rfm_segments(customer_features, rules, without_net_purchases),
            "monthly_revenue": lambda: insights.monthly_revenue(lines, customer_features, as_of_date),
            "revenue_by_weekday": lambda: insights.revenue_by_weekday(lines, as_of_date),
            "revenue_by_country": lambda: insights.revenue_by_country(lines, as_of_date),
            "top_customers": lambda: insights.top_customers(customer_features),
            "lost_customers_monthly": lambda: insights.lost_customers_monthly(customer_features, as_of_date),
            "revenue_concentration": lambda: insights.revenue_concentration(customer_features, as_of_date),
        }
        outputs = {getattr(tables, name): (rows, table(name).spec(sources)) for name, rows in built.items()}
        assert set(outputs) == set(tables.written_by("gold_features", sources)), "every table of the task, once"
        written = overwrite_tables(spark, outputs)
        # Recorded last: a build interrupted before this line is redone in full next time.
        set_property(spark, tables.customer_features, BUILT_FROM, built_from)
        return written


def code_fingerprint() -> str:
    """A hash of the source of every module of the layers up to gold and of the rule files."""
    digest = hashlib.sha256()
    modules = sorted(f for folder in CODE_FOLDERS for f in (PACKAGE / folder).glob("*.py"))
    named = [(f.relative_to(PACKAGE).as_posix(), f) for f in [*modules, PACKAGE / "core" / "tables.yaml"]]
    named += [(f"config/{name}", CONFIG_DIR / name) for name in RULE_FILES]
    for name, path in named:
        digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def fingerprint(spark: SparkSession, settings: Settings, as_of_date) -> str:
    """What the gold tables are a function of: silver's versions, the date, code and rules."""
    tables = settings.tables
    sources = "".join(f", {s} v{table_version(spark, getattr(tables, s))}" for s in settings.sources_in_use)
    return (f"orders v{table_version(spark, tables.orders)}{sources}, as of {as_of_date}, "
            f"code and rules {code_fingerprint()}")


def _built_from(spark: SparkSession, settings: Settings) -> str | None:
    outputs = settings.tables.written_by("gold_features", settings.sources_in_use)
    if not all(table_exists(spark, name) for name in outputs):
        return None
    return get_property(spark, settings.tables.customer_features, BUILT_FROM)
