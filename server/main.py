"""`chargenet server` (migrate, then serve the API, dashboard and MQTT ingest) and
`chargenet db upgrade` (migrate only, e.g. before rolling out several server processes).

Settings come from the environment (`CHARGENET_*`, see server/settings.py); `--host` and
`--port` override theirs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from types import FrameType

import uvicorn
from pydantic import ValidationError
from starlette.types import ASGIApp

from server.db.migrate import upgrade
from server.settings import Settings, unknown_variables

log = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_S = 5
"""Browsers hold server-sent-event streams open; uvicorn waits at most this long for them."""


KEEP_ALIVE_S = 75
"""Idle keep-alive connections stay open this long (uvicorn's default, 5 s, makes clients
behind a proxy or a pooled HTTP client race the close)."""


def main(argv: list[str]) -> int:
    """`chargenet server [--host H] [--port P]`."""
    parser = argparse.ArgumentParser(prog="chargenet server", description=__doc__)
    parser.add_argument("--host", help="listen address (default CHARGENET_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default CHARGENET_PORT or 8000)")
    args = parser.parse_args(argv)
    settings = environment_settings()
    if settings is None:
        return 2
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = settings.model_copy(update=overrides)
    serve(settings)
    return 0


def serve(settings: Settings) -> None:
    """Run the app; its lifespan migrates and starts the services."""
    from server.api.app import create_app

    run(create_app(settings), settings.host, settings.port)


def run(app: ASGIApp, host: str, port: int) -> None:
    """Serve an ASGI app with uvicorn until SIGTERM/SIGINT (the server's and the intake's).

    uvloop and httptools (C event loop and parser) and no access log: a burst spends its
    CPU on bookings and webhooks, not on the HTTP layer or a log line per request. A
    lifespan that fails ends the process.
    """
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, proxy_headers=False,
        loop="uvloop", http="httptools", access_log=False, timeout_keep_alive=KEEP_ALIVE_S,
    )  # fmt: skip
    StopsCleanly(config).run()


class StopsCleanly(uvicorn.Server):
    """Exits 0 after a graceful stop on SIGTERM/SIGINT.

    uvicorn re-raises the signal once it has shut down, so supervisors (and the demo)
    would see a process killed by SIGTERM rather than one that stopped cleanly.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def db_main(argv: list[str]) -> int:
    """`chargenet db upgrade`: bring the configured database to the newest schema."""
    parser = argparse.ArgumentParser(prog="chargenet db", description="database maintenance")
    parser.add_argument("action", choices=["upgrade"])
    parser.parse_args(argv)
    settings = environment_settings()
    if settings is None:
        return 2
    upgrade(settings.database_url)
    log.info("database is at the newest schema")
    return 0


def environment_settings() -> Settings | None:
    """The settings from the environment; None, with what is wrong on stderr, if they are bad."""
    unknown = unknown_variables(os.environ)
    if unknown:
        print(f"chargenet: unknown settings in the environment: {'; '.join(unknown)}",
              file=sys.stderr)  # fmt: skip
        return None
    try:
        return Settings()
    except ValidationError as exc:
        print(f"chargenet: bad settings in the environment:\n{exc}", file=sys.stderr)
        return None
