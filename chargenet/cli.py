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
    "demo": ("chargenet.demo", "run it all here: broker, simulator, gateway, server, sandboxes"),
    "server": ("server.main", "the server: MQTT ingest, booking, REST API, dashboard"),
    "intake": ("server.intake.main", "LINE's webhook, journaled, in front of the server"),
    "db": ("server.main:db_main", "database maintenance: `chargenet db upgrade`"),
    "operators": ("server.access.cli", "operator accounts: HQ, municipality, viewer"),
    "drill": ("chargenet.drill", "drills (訓練): play a scenario on twin stations, then report"),
    "report": ("server.reports.cli", "after-action reports: CSV, PDF, PNG, kintone records"),
    "posters": ("server.line.posters_cli", "print-ready station QR posters for LINE (PDF)"),
    "gateway": ("gateway.main", "the edge program: poll batteries, publish over MQTT"),
    "sim": ("firmware_sim.cli", "simulated charging batteries on serial lines and TCP"),
    "broker": ("chargenet.embedded_broker", "a pure-Python MQTT broker for the demo"),
    "sandbox": ("sandbox.main", "stand-ins for LINE and LINE WORKS, with a web chat"),
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or args[0] not in ENTRIES:
        print("usage: chargenet {" + ",".join(ENTRIES) + "} [options]\n", file=sys.stderr)
        for name, (_, what) in ENTRIES.items():
            print(f"  {name:<9} {what}", file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    setup_logging()
    module_name, _, function = ENTRIES[args[0]][0].partition(":")
    module = importlib.import_module(module_name)
    entry: Callable[[list[str]], int] = getattr(module, function or "main")
    return entry(args[1:])


if __name__ == "__main__":
    sys.exit(main())
