-- Monthly trends: net revenue, orders, active and new customers, and customers whose last
-- purchase fell in the month. days_counted is short of the month's length in the month the data
-- starts or ends in: its lower figures are not a fall. In the data's first month every customer
-- counts as new: the data holds no earlier purchase.
SELECT m.month, m.days_counted,
       round(m.net_revenue, 2) AS net_revenue, m.orders, m.active_customers, m.new_customers,
       coalesce(l.customers_lost, 0) AS last_purchase_this_month
FROM ${gold}.monthly_revenue m
LEFT JOIN ${gold}.lost_customers_monthly l ON l.month = m.month
ORDER BY m.month
