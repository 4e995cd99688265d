"""The views analysts read: movement between snapshots, the segments in marketing terms, and each
customer's latest segment. Table names are built from validated identifiers only; each view's
comment comes from the table registry."""

from __future__ import annotations

from ..core.delta import sql_string
from ..core.settings import Settings
from ..core.tables import table


def view_statements(settings: Settings) -> list[str]:
    """CREATE OR REPLACE VIEW statements of the three views, in dependency order."""
    t = settings.tables
    bodies = {
        "segment_migration": f"""
WITH snapshots AS (
  SELECT as_of_date, dense_rank() OVER (ORDER BY as_of_date DESC) AS age
  FROM (SELECT DISTINCT as_of_date FROM {t.segment_history})
),
latest AS (SELECT h.* FROM {t.segment_history} h JOIN snapshots s ON h.as_of_date = s.as_of_date AND s.age = 1),
previous AS (SELECT h.* FROM {t.segment_history} h JOIN snapshots s ON h.as_of_date = s.as_of_date AND s.age = 2)
SELECT
  (SELECT max(as_of_date) FROM snapshots WHERE age = 2) AS from_date,
  (SELECT max(as_of_date) FROM snapshots WHERE age = 1) AS to_date,
  coalesce(previous.segment_name, '(new customer)') AS from_segment,
  coalesce(latest.segment_name, '(not scored)') AS to_segment,
  count(*) AS customers
FROM latest FULL OUTER JOIN previous ON latest.customer_id = previous.customer_id
GROUP BY 3, 4""",
        "segment_summary": f"""
SELECT segment_name, customers, round(share_of_customers, 4) AS share_of_customers,
  round(share_of_net_revenue, 4) AS share_of_net_revenue, round(median_recency_days) AS median_recency_days,
  round(median_frequency) AS median_frequency, round(median_monetary, 2) AS median_net_revenue,
  dominant_rfm_segment, description, recommended_action, as_of_date
FROM {t.segment_profiles}""",
        "customer_latest_segment": f"""
SELECT s.customer_id, s.segment_name, s.recommended_action, s.rfm_segment, f.recency_days, f.frequency,
  round(f.monetary, 2) AS net_revenue, f.last_purchase_date, f.main_country, s.as_of_date
FROM {t.customer_segments} s JOIN {t.customer_features} f ON s.customer_id = f.customer_id""",
    }
    return [f"CREATE OR REPLACE VIEW {getattr(t, name)} COMMENT {sql_string(table(name).comment)} AS{body}"
            for name, body in bodies.items()]
