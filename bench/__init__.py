"""Benchmarks: printed figures with medians, not pass/fail timing tests."""
