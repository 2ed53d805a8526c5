"""`chargenet intake [--host H] [--port P]`: LINE's webhook in front of the server.

Settings come from the environment as the server's do (`CHARGENET_LINE_CHANNEL_SECRET`,
`CHARGENET_INTAKE_SERVER_URL`, `CHARGENET_INTAKE_JOURNAL`, ...); `--host` and `--port`
override `CHARGENET_INTAKE_HOST` and `CHARGENET_INTAKE_PORT`.
"""

from __future__ import annotations

import argparse

import uvicorn

from server.intake.app import IntakeApp
from server.main import KEEP_ALIVE_S, StopsCleanly, environment_settings


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="chargenet intake", description=__doc__)
    parser.add_argument("--host", help="listen address (default CHARGENET_INTAKE_HOST)")
    parser.add_argument("--port", type=int, help="listen port (default CHARGENET_INTAKE_PORT)")
    args = parser.parse_args(argv)
    settings = environment_settings()
    if settings is None:
        return 2
    config = uvicorn.Config(
        IntakeApp(settings), host=args.host or settings.intake_host,
        port=settings.intake_port if args.port is None else args.port, log_config=None,
        lifespan="on", loop="uvloop", http="httptools", access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S, proxy_headers=False,
    )  # fmt: skip
    StopsCleanly(config).run()
    return 0
