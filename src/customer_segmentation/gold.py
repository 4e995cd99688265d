"""Task `gold_features`: customer features, rule-based RFM segments and business insight tables."""

from __future__ import annotations

from pyspark.sql import SparkSession

from . import features, insights
from .errors import SourceError
from .rules import rfm_rules
from .settings import Settings
from .tables import ensure_schemas, overwrite_tables


def run(spark: SparkSession, settings: Settings) -> dict[str, int]:
    tables = settings.tables
    orders = spark.table(tables.orders)
    as_of_date = settings.as_of_date or features.default_as_of_date(orders)
    if as_of_date is None:
        raise SourceError(f"{tables.orders} has no valid order lines: nothing to build features from "
                          f"(see {tables.orders_quarantine} for why lines were rejected)")
    features.check_as_of_date(orders, as_of_date)
    ensure_schemas(spark, settings)
    customer_features = features.customer_features(orders, as_of_date).persist()
    try:
        outputs = {
            tables.customer_features: (customer_features, features.CUSTOMER_FEATURES),
            tables.rfm_segments: (features.rfm_segments(customer_features, rfm_rules()), features.RFM_SEGMENTS),
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
        return overwrite_tables(spark, outputs)
    finally:
        customer_features.unpersist()
