-- Who is slipping away, by segment: customers in each churn-risk band (by the chance of buying in
-- the next 90 days: active from 0.5, at risk from 0.2, likely lost below), that chance on average,
-- and the value they are still predicted to bring. Not p_alive: on the real data it is about 1 in
-- every band (see the README's lifetime value section).
SELECT segment_name, churn_risk, count(*) AS customers, round(avg(p_purchase_90d), 3) AS mean_p_purchase_90d,
       round(sum(predicted_clv), 0) AS predicted_clv
FROM ${gold}.customer_latest_segment
WHERE churn_risk IS NOT NULL
GROUP BY segment_name, churn_risk
ORDER BY segment_name, churn_risk
