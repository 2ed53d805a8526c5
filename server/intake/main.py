"""`chargenet intake [--host H] [--port P]`: LINE's webhook in front of the server.

Settings come from the environment as the server's do (`CHARGENET_LINE_CHANNEL_SECRET`,
`CHARGENET_INTAKE_SERVER_URL`, `CHARGENET_INTAKE_JOURNAL`, ...); `--host` and `--port`
override `CHARGENET_INTAKE_HOST` and `CHARGENET_INTAKE_PORT`.
"""

from __future__ import annotations

import argparse

from server.intake.app import IntakeApp
from server.main import environment_settings, run


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="chargenet intake", description=__doc__)
    parser.add_argument("--host", help="listen address (default CHARGENET_INTAKE_HOST)")
    parser.add_argument("--port", type=int, help="listen port (default CHARGENET_INTAKE_PORT)")
    args = parser.parse_args(argv)
    settings = environment_settings()
    if settings is None:
        return 2
    port = settings.intake_port if args.port is None else args.port
    run(IntakeApp(settings), args.host or settings.intake_host, port)
    return 0
