"""Modbus TCP: several units behind one port, as behind a TCP/RTU bridge.

No wire time here (TCP has none worth emulating), but a silent unit still says nothing
and a slow one still answers late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from firmware_sim.battery import SimBattery
from firmware_sim.modbus_frames import handle_pdu, split_mbap

log = logging.getLogger(__name__)


class TcpServer:
    """One listening socket; the MBAP unit id picks the battery."""

    def __init__(
        self, name: str, batteries: Mapping[int, SimBattery], host: str, port: int
    ) -> None:
        self.name = name
        self.batteries = batteries
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._clients: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self) -> int:
        """Listen; returns the port (the one the OS picked when asked for 0)."""
        self._server = await asyncio.start_server(self._on_client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        """Stop listening and end every connection: closing a client's socket ends its read,
        so its handler returns normally (cancelling it would log a traceback at exit)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._clients.values()):
            writer.close()
        await asyncio.gather(*self._clients, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients[task] = writer
        buf = bytearray()
        try:
            while data := await reader.read(4096):
                buf += data
                while (split := split_mbap(buf)) is not None:
                    header, pdu, consumed = split
                    del buf[:consumed]
                    battery = self.batteries.get(header.unit_id)
                    if battery is None or battery.link.silent or not pdu:
                        continue
                    if battery.link.delay_s:
                        await asyncio.sleep(battery.link.delay_s)
                    writer.write(header.frame(handle_pdu(battery, pdu)))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._clients.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
