"""factstr benchmarks (see bench/README.md). Run with ``python bench/run.py``."""
