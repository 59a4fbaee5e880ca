"""Benchmarks: simulation speed and cycle counts (never timed tests)."""
