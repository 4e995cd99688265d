-- Monthly trends: net revenue, orders, active and new customers, and customers whose last
-- purchase fell in the month.
SELECT m.month, round(m.net_revenue, 2) AS net_revenue, m.orders, m.active_customers, m.new_customers,
       coalesce(l.customers_lost, 0) AS last_purchase_this_month
FROM ${gold}.monthly_revenue m
LEFT JOIN ${gold}.lost_customers_monthly l ON l.month = m.month
ORDER BY m.month
