"""Benchmarks: measured side by side in one process and reported as ratios to a baseline."""
