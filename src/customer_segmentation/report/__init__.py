"""The segment report for marketers: one self-contained HTML page from a template."""
