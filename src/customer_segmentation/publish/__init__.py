"""Publish: every customer scored with the champion, segments named and profiled, history and views."""
