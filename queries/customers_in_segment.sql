-- Customers of one segment, most valuable first (change the segment name to the one you need).
SELECT customer_id, segment_name, net_revenue, frequency AS orders, recency_days, last_purchase_date,
       main_country, rfm_segment
FROM ${gold}.customer_latest_segment
WHERE segment_name = (SELECT segment_name FROM ${gold}.segment_summary ORDER BY share_of_net_revenue DESC LIMIT 1)
ORDER BY net_revenue DESC
