"""Task `gold_features`: customer features, rule-based RFM segments and business insight tables."""

from __future__ import annotations

import hashlib

from pyspark.sql import SparkSession

from . import __version__, enrich, features, insights
from .console import say
from .errors import SourceError
from .rules import CONFIG_DIR, rfm_rules, segment_catalogue
from .settings import Settings
from .tables import (drop_if_columns_changed, ensure_schemas, get_property, overwrite_tables, set_property,
                     table_exists, table_version)

BUILT_FROM = "customer_segmentation.built_from"


def run(spark: SparkSession, settings: Settings) -> dict[str, int]:
    tables = settings.tables
    orders = spark.table(tables.orders)
    as_of_date = settings.as_of_date or features.default_as_of_date(orders)
    if as_of_date is None:
        raise SourceError(f"{tables.orders} has no valid order lines: nothing to build features from "
                          f"(see {tables.orders_quarantine} for why lines were rejected)")
    features.check_as_of_date(orders, as_of_date)
    ensure_schemas(spark, settings)
    built_from = _inputs(spark, settings, as_of_date)
    if _built_from(spark, settings) == built_from:
        say(f"[gold_features] inputs unchanged since the last build ({built_from}): tables kept as they are")
        return {}
    sources = settings.sources_in_use
    customer_features = enrich.enrich(
        features.customer_features(orders, as_of_date),
        enrich.customer_attributes(spark.table(tables.customers)) if "customers" in sources else None,
        enrich.engagement_totals(spark.table(tables.engagement), as_of_date) if "engagement" in sources else None,
    ) if sources else features.customer_features(orders, as_of_date)
    customer_features = customer_features.persist()
    try:
        outputs = {
            tables.customer_features: (customer_features, enrich.enriched_spec(sources)),
            tables.value_tiers: (enrich.value_tiers(customer_features, settings.seed), enrich.VALUE_TIERS),
            tables.rfm_segments: (features.rfm_segments(customer_features, rfm_rules(),
                                                          segment_catalogue().without_net_purchases.name),
                                   features.RFM_SEGMENTS),
            tables.monthly_revenue: (insights.monthly_revenue(orders, customer_features, as_of_date),
                                     insights.SPECS["monthly_revenue"]),
            tables.revenue_by_weekday: (insights.revenue_by_weekday(orders, as_of_date),
                                        insights.SPECS["revenue_by_weekday"]),
            tables.revenue_by_country: (insights.revenue_by_country(orders, as_of_date),
                                        insights.SPECS["revenue_by_country"]),
            tables.top_products: (insights.top_products(orders, as_of_date), insights.SPECS["top_products"]),
            tables.top_customers: (insights.top_customers(customer_features), insights.SPECS["top_customers"]),
            tables.lost_customers_monthly: (insights.lost_customers_monthly(customer_features, as_of_date),
                                            insights.SPECS["lost_customers_monthly"]),
            tables.revenue_concentration: (insights.revenue_concentration(customer_features, as_of_date),
                                           insights.SPECS["revenue_concentration"]),
        }
        drop_if_columns_changed(spark, tables.customer_features, enrich.enriched_spec(sources))
        written = overwrite_tables(spark, outputs)
        # Recorded last: a build interrupted before this line is redone in full next time.
        set_property(spark, tables.customer_features, BUILT_FROM, built_from)
        return written
    finally:
        customer_features.unpersist()


def _inputs(spark: SparkSession, settings: Settings, as_of_date) -> str:
    """What the gold tables are a function of: silver's version, the date, the rules and the code."""
    rules = hashlib.sha256(b"".join((CONFIG_DIR / f).read_bytes() for f in ("cleaning.yaml", "rfm_segments.yaml",
                                                                               "segment_names.yaml")))
    sources = "".join(f", {s} v{table_version(spark, getattr(settings.tables, s))}" for s in settings.sources_in_use)
    return (f"orders v{table_version(spark, settings.tables.orders)}{sources}, as of {as_of_date}, "
            f"rules {rules.hexdigest()[:12]}, seed {settings.seed}, code {__version__}")


def _built_from(spark: SparkSession, settings: Settings) -> str | None:
    tables = settings.tables
    outputs = (tables.customer_features, tables.rfm_segments, tables.monthly_revenue, tables.revenue_by_weekday,
               tables.revenue_by_country, tables.top_products, tables.top_customers, tables.lost_customers_monthly,
               tables.revenue_concentration, tables.value_tiers)
    if not all(table_exists(spark, name) for name in outputs):
        return None
    return get_property(spark, tables.customer_features, BUILT_FROM)
