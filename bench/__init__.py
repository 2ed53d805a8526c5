"""Benchmarks (not tests): `python -m bench` prints a table and writes JSON to bench/results/."""
