"""`python -m bench [gateway ingest booking assignment]`: run benchmarks (default: all).

Each prints its table and writes bench/results/<name>.json. Options of one benchmark:
`python -m bench.<name> --help`.
"""

import importlib
import sys

BENCHES = ("gateway", "ingest", "booking", "assignment")

names = sys.argv[1:] or list(BENCHES)
unknown = [n for n in names if n not in BENCHES]
if unknown:
    sys.exit(f"unknown benchmark {unknown}; choose from {', '.join(BENCHES)}")
failed = 0
for name in names:
    print(f"\n== {name} ==", flush=True)
    failed |= importlib.import_module(f"bench.{name}").main([])
sys.exit(failed)
