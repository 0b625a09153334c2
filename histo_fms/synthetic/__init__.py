"""Phantom generators with ground truth, for tests, benchmarks and ``sample_data/``."""
