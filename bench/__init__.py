"""Benchmark harness and measurements; run through management commands, never from tests."""
