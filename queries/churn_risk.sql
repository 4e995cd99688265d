-- Who is slipping away, by segment: customers in each churn-risk band (by the chance of buying in
-- the next 90 days: active from 0.5, at risk from 0.2, likely lost below) and the value they are
-- still predicted to bring.
SELECT segment_name, churn_risk, count(*) AS customers, round(avg(p_alive), 3) AS mean_p_alive,
       round(sum(predicted_clv), 0) AS predicted_clv
FROM ${gold}.customer_latest_segment
WHERE churn_risk IS NOT NULL
GROUP BY segment_name, churn_risk
ORDER BY segment_name, churn_risk
