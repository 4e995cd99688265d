-- High-value customers drifting away: in the top 40% by net revenue, no purchase for 90 days or
-- more. Good candidates for a personal win-back.
WITH ranked AS (
  SELECT *, percent_rank() OVER (ORDER BY net_revenue) AS revenue_percentile
  FROM ${gold}.customer_latest_segment
)
SELECT customer_id, segment_name, rfm_segment, net_revenue, frequency AS orders, recency_days, last_purchase_date,
       main_country
FROM ranked
WHERE revenue_percentile >= 0.6 AND recency_days >= 90
ORDER BY net_revenue DESC
