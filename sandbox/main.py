"""`chargenet sandbox --config sandbox.toml [--host H] [--port P]`: serve both stand-ins.

Port 0 takes a free port. Once the socket listens, one line goes to stdout,
`sandbox listening on http://HOST:PORT`, for whoever started it; nothing secret is printed
(the secrets stay in the settings file): a bad file is named key by key without values,
exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import tomllib
from pathlib import Path
from types import FrameType

import uvicorn
from pydantic import ValidationError

from sandbox.app import create_app
from sandbox.config import load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chargenet sandbox", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="the sandbox.toml")
    parser.add_argument("--host", help="listen here instead of the file's host")
    parser.add_argument("--port", type=int, help="listen here instead of the file's port")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = load(args.config)
    except (OSError, tomllib.TOMLDecodeError) as error:
        print(f"chargenet sandbox: cannot read {args.config}: {error}", file=sys.stderr)
        return 2
    except ValidationError as error:
        for problem in error.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in problem["loc"])
            print(f"chargenet sandbox: {args.config}: {where}: {problem['msg']}", file=sys.stderr)
        return 2
    host = config.host if args.host is None else args.host
    port = config.port if args.port is None else args.port
    listening = socket.create_server((host, port), family=_family(host))
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
    print(f"sandbox listening on http://{shown}:{listening.getsockname()[1]}", flush=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # each webhook is logged once, ours
    app = create_app(config)
    server = _Server(
        uvicorn.Config(app, log_config=None, access_log=False, loop="uvloop", http="httptools")
    )
    server.run(sockets=[listening])
    return 0


class _Server(uvicorn.Server):
    """Exits 0 after a graceful stop on SIGTERM/SIGINT (uvicorn re-raises the signal once it
    has shut down, so whoever started it would see a process killed, not one stopped)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
