"""The views analysts read: movement between snapshots, the segments in marketing terms, each
customer's latest segment, the valuable customers slipping away, and what became of the lines
received. Table names are built from validated identifiers only; each view's
comment comes from the table registry."""

from __future__ import annotations

from ..core.delta import sql_string
from ..core.settings import Settings
from ..core.tables import table

# High value: the top fifth of customers by net revenue so far. Predicted CLV cannot say it: it is
# already low for whoever the model thinks is leaving.
HIGH_VALUE_PERCENTILE = 0.8


def view_statements(settings: Settings, with_data_quality: bool = True) -> list[str]:
    """CREATE OR REPLACE VIEW statements of the views, in dependency order; data_quality only
    `with_data_quality` (the silver tables it reads exist)."""
    t = settings.tables
    bodies = {
        "segment_migration": f"""
WITH snapshots AS (
  SELECT as_of_date, dense_rank() OVER (ORDER BY as_of_date DESC) AS age
  FROM (SELECT DISTINCT as_of_date FROM {t.segment_history})
),
latest AS (SELECT h.* FROM {t.segment_history} h JOIN snapshots s ON h.as_of_date = s.as_of_date AND s.age = 1),
previous AS (SELECT h.* FROM {t.segment_history} h JOIN snapshots s ON h.as_of_date = s.as_of_date AND s.age = 2),
dates AS (SELECT max(if(age = 2, as_of_date, NULL)) AS from_date, max(if(age = 1, as_of_date, NULL)) AS to_date
          FROM snapshots)
SELECT dates.from_date, dates.to_date,
  coalesce(previous.segment_name, if(dates.from_date IS NULL, '(first snapshot)', '(new customer)')) AS from_segment,
  coalesce(latest.segment_name, '(not scored)') AS to_segment,
  count(*) AS customers
FROM latest FULL OUTER JOIN previous ON latest.customer_id = previous.customer_id CROSS JOIN dates
GROUP BY 1, 2, 3, 4""",
        "segment_summary": f"""
SELECT segment_name, customers, round(share_of_customers, 4) AS share_of_customers,
  round(share_of_net_revenue, 4) AS share_of_net_revenue, round(median_recency_days) AS median_recency_days,
  round(median_frequency) AS median_frequency, round(median_monetary, 2) AS median_net_revenue,
  dominant_rfm_segment, description, recommended_action, as_of_date
FROM {t.segment_profiles}""",
        "customer_latest_segment": f"""
SELECT s.customer_id, s.segment_name, s.recommended_action, s.rfm_segment, f.recency_days, f.frequency,
  round(f.monetary, 2) AS net_revenue, f.last_purchase_date, f.main_country,
  round(v.p_alive, 4) AS p_alive, round(v.p_purchase_90d, 4) AS p_purchase_90d,
  round(v.expected_purchases_90d, 2) AS expected_purchases_90d, round(v.predicted_clv, 2) AS predicted_clv,
  v.churn_risk, s.as_of_date
FROM {t.customer_segments} s JOIN {t.customer_features} f ON s.customer_id = f.customer_id
LEFT JOIN {t.customer_lifetime_value} v ON s.customer_id = v.customer_id""",
        "high_value_at_risk": f"""
WITH ranked AS (
  SELECT *, percent_rank() OVER (ORDER BY net_revenue) AS revenue_percentile FROM {t.customer_latest_segment}
)
SELECT customer_id, segment_name, churn_risk, p_purchase_90d, p_alive, predicted_clv, net_revenue,
  frequency AS orders, recency_days, last_purchase_date, main_country,
  round(revenue_percentile, 4) AS revenue_percentile, as_of_date
FROM ranked
WHERE revenue_percentile >= {HIGH_VALUE_PERCENTILE} AND churn_risk IN ('at risk', 'likely lost')""",
        # Over silver, so that analysts (granted gold only) see what happened to the lines received.
        "data_quality": f"""
WITH outcomes AS (
  SELECT 'kept' AS outcome, count(*) AS lines FROM {t.orders}
  UNION ALL
  SELECT concat('quarantined: ', reject_reason), count(*) FROM {t.orders_quarantine} GROUP BY reject_reason
)
SELECT outcome, lines, round(lines / sum(lines) OVER (), 6) AS share_of_lines_received,
  sum(lines) OVER () AS lines_received
FROM outcomes""",
    }
    return [f"CREATE OR REPLACE VIEW {getattr(t, name)} COMMENT {sql_string(table(name).comment)} AS{body}"
            for name, body in bodies.items() if with_data_quality or name != "data_quality"]
