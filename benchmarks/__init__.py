"""Benchmarks and the paper's ablations on the synthetic set (see benchmarks/README.md)."""
