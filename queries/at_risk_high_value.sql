-- Valuable customers slipping away: the top fifth by net revenue so far whose chance of buying in
-- the next 90 days is below even (churn risk 'at risk' or 'likely lost', from the lifetime-value
-- model). Worth a personal win-back, most valuable first; predicted_clv is what they are still
-- expected to bring if nothing is done.
SELECT customer_id, segment_name, churn_risk, p_purchase_90d, predicted_clv, net_revenue, orders, recency_days,
       last_purchase_date, main_country
FROM ${gold}.high_value_at_risk
ORDER BY net_revenue DESC
