"""Benchmarks (not tests): `python -m bench` prints tables and writes JSON to bench/results/."""

from typing import Final

BENCHES: Final = (
    "gateway", "gateway_soak", "outbox", "ingest", "booking", "assignment", "platforms", "fuzz",
    "faults", "announcements",
)  # fmt: skip
"""The benchmark modules (`bench.<name>`, each with `main(argv) -> int`), in the order
`python -m bench` runs them."""
