"""Silver: typed, cleaned, de-duplicated lines, and a quarantine with a reason for every other line."""
