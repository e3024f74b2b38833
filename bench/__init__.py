"""Benchmarks: each measures both sides of a ratio in one run (the machine is shared and noisy)."""
