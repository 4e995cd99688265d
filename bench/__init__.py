"""Benchmark harness: the product's whole job against two reference implementations."""
