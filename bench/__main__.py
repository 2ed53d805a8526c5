"""`python -m bench [NAME ...]`: run benchmarks with their default options (default: all).

`python -m bench NAME --option ...` runs one with its options, the same as
`python -m bench.NAME --option ...`; `python -m bench NAME --help` lists them. Each prints
its table and writes bench/results/NAME.json; the exit status is non-zero if any failed.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import itertools
import sys
from pathlib import Path

from bench import BENCHES


def summary(name: str) -> str:
    """The first line of a benchmark's docstring, read without importing it."""
    source = (Path(__file__).parent / f"{name}.py").read_text()
    return (ast.get_docstring(ast.parse(source)) or "").split("\n")[0]


def run(name: str, argv: list[str]) -> int:
    main = importlib.import_module(f"bench.{name}").main
    code: int = main(argv)
    return code


def main(argv: list[str]) -> int:
    listing = "\n".join(f"  {name:<12} {summary(name)}" for name in BENCHES)
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, epilog=f"benchmarks:\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run")
    names = list(itertools.takewhile(lambda arg: not arg.startswith("-"), argv))
    options = argv[len(names) :]
    if unknown := [name for name in names if name not in BENCHES]:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    if len(names) == 1 and options:
        return run(names[0], options)  # its own options, --help included
    if len(names) > 1 and options:
        parser.error("options go to one benchmark at a time: python -m bench NAME --option ...")
    parser.parse_args(argv)  # --help, or a usage error for an option of the runner's
    failed = 0
    for name in names or BENCHES:
        print(f"\n== {name} ==", flush=True)
        failed |= run(name, [])
    return failed


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
