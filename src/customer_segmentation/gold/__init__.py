"""Gold features: one row per customer (RFM and more), rule-based RFM segments, value tiers and
business insight tables."""
