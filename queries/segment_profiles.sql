-- What a typical customer of each segment looks like (medians of the RFM features), and what the
-- lifetime-value model expects of them: chance of buying in the next 90 days, share of the value
-- still to come. Days and orders in whole numbers, as the descriptions state them.
SELECT segment_name, customers,
       round(median_recency_days) AS median_recency_days, round(median_frequency) AS median_frequency,
       round(median_monetary, 2) AS median_net_revenue,
       round(median_avg_order_value, 2) AS median_order_value, round(median_tenure_days) AS median_tenure_days,
       round(mean_p_purchase_90d, 3) AS mean_p_purchase_90d, customers_at_risk,
       round(100 * share_of_predicted_clv, 1) AS pct_of_predicted_clv, description
FROM ${gold}.segment_profiles
ORDER BY customers DESC
