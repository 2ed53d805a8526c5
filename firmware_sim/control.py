"""A small HTTP/JSON control API on 127.0.0.1: list units, inject and clear faults, plug phones.

Plain asyncio streams, one request per connection, so the simulator needs no web framework.
Routes are one table; bodies are validated with pydantic like everything else on a wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from firmware_sim.errors import FaultError, UnknownUnit
from firmware_sim.fleet import Fleet
from firmware_sim.scenario import FaultTarget

MAX_BODY: Final = 65536
REASONS: Final = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class PhoneRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    line: str
    unit_id: int = Field(ge=1, le=247)
    port: int = Field(ge=1)
    plugged: bool


Response = tuple[int, Any]


def on_units(fleet: Fleet, body: bytes) -> Response:
    return 200, {"units": [unit.snapshot() for unit in fleet.units.values()]}


def on_inject(fleet: Fleet, body: bytes) -> Response:
    request = FaultTarget.model_validate_json(body)
    fleet.inject(request.line, request.unit_id, request.fault())
    return 200, fleet.unit(request.line, request.unit_id).snapshot()


def on_clear(fleet: Fleet, body: bytes) -> Response:
    request = FaultTarget.model_validate_json(body)
    fleet.clear(request.line, request.unit_id, request.fault())
    return 200, fleet.unit(request.line, request.unit_id).snapshot()


def on_phone(fleet: Fleet, body: bytes) -> Response:
    request = PhoneRequest.model_validate_json(body)
    fleet.set_phone(request.line, request.unit_id, request.port, request.plugged)
    return 200, fleet.unit(request.line, request.unit_id).snapshot()


ROUTES: Final[dict[tuple[str, str], Callable[[Fleet, bytes], Response]]] = {
    ("GET", "/units"): on_units,
    ("POST", "/faults"): on_inject,
    ("DELETE", "/faults"): on_clear,
    ("POST", "/faults/clear"): on_clear,
    ("POST", "/phones"): on_phone,
}


def route(fleet: Fleet, method: str, path: str, body: bytes) -> Response:
    """The status and JSON body for one request; errors become 400/404, never exceptions."""
    handler = ROUTES.get((method, path.split("?", 1)[0]))
    if handler is None:
        known = any(p == path for _, p in ROUTES)
        return (405, {"error": "method not allowed"}) if known else (404, {"error": "no route"})
    try:
        return handler(fleet, body)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "body"
        return 400, {"error": f"{key}: {first['msg']}"}
    except UnknownUnit as error:
        return 404, {"error": str(error)}
    except FaultError as error:
        return 400, {"error": str(error)}


class ControlApi:
    """The HTTP listener around `route`."""

    def __init__(self, fleet: Fleet, host: str = "127.0.0.1", port: int = 0) -> None:
        self.fleet = fleet
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._on_client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.url

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = [*lines[0].split(" "), "", ""][:3]
            headers = dict(
                (k.strip().lower(), v.strip()) for k, _, v in (h.partition(":") for h in lines[1:])
            )
            length = min(int(headers.get("content-length", "0") or 0), MAX_BODY)
            body = await reader.readexactly(length) if length else b""
            status, payload = route(self.fleet, method, path, body)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            status, payload = 400, {"error": "malformed request"}
        data = json.dumps(payload).encode()
        writer.write(
            f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + data
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()
