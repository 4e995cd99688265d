-- Data quality: of the lines received, how many were kept and how many quarantined, by reason.
SELECT outcome, lines, round(100 * share_of_lines_received, 2) AS pct_of_lines_received, lines_received
FROM ${gold}.data_quality
ORDER BY lines DESC
