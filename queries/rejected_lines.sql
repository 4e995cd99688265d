-- Data quality: lines set aside in quarantine, by reason, with an example of each.
SELECT reject_reason, count(*) AS lines, min(reject_detail) AS example_detail, min(_raw_line) AS example_line
FROM ${silver}.orders_quarantine
GROUP BY reject_reason
ORDER BY lines DESC
