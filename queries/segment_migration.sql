-- Where customers moved since the previous snapshot (segment_history holds one per as_of_date).
SELECT from_date, to_date, from_segment, to_segment, customers
FROM ${gold}.segment_migration
ORDER BY customers DESC
