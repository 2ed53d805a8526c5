"""`chargenet <part> ...`: a thin dispatcher to each package's own entry point.

Each part is imported only when asked for, so the gateway process carries neither the
simulator nor the server.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Final

from chargenet.logs import setup_logging

ENTRIES: Final = {
    "demo": ("chargenet.demo", "run everything on this machine: broker, simulator, gateway"),
    "gateway": ("gateway.main", "the edge program: poll batteries, publish over MQTT"),
    "sim": ("firmware_sim.cli", "simulated charging batteries on serial lines and TCP"),
    "broker": ("chargenet.embedded_broker", "a pure-Python MQTT broker for the demo"),
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or args[0] not in ENTRIES:
        print("usage: chargenet {" + ",".join(ENTRIES) + "} [options]\n", file=sys.stderr)
        for name, (_, what) in ENTRIES.items():
            print(f"  {name:<8} {what}", file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    setup_logging()
    module = importlib.import_module(ENTRIES[args[0]][0])
    entry: Callable[[list[str]], int] = module.main
    return entry(args[1:])


if __name__ == "__main__":
    sys.exit(main())
