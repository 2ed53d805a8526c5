"""A tiny HTTP server standing in for the bot server: it records what a sandbox posts
(webhooks, callbacks) and answers with the status a test sets."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    """(headers with lower-case names, raw body) of each POST, in arrival order."""
    url: str = ""


@contextlib.contextmanager
def receiving(path: str) -> Iterator[Receiver]:
    """A receiver listening on a free loopback port; `url` ends in `path`."""
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(got.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    got.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()
