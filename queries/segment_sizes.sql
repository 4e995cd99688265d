-- Segment sizes and revenue: how many customers each segment holds, what share of net revenue
-- they bring, and what marketing should do with them.
SELECT segment_name,
       customers,
       round(100 * share_of_customers, 1)   AS pct_of_customers,
       round(100 * share_of_net_revenue, 1) AS pct_of_net_revenue,
       median_net_revenue,
       recommended_action
FROM ${gold}.segment_summary
ORDER BY share_of_net_revenue DESC
