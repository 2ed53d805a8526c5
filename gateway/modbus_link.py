"""The thin Modbus shell: one pymodbus client per bus, reads and writes by unit id.

RTU and TCP differ only in how the client is built; everything else (the poller, the
commands) talks to a `ModbusLink`. Every failure becomes `UnitUnreachable`, so the
poller sees one kind of trouble and pymodbus' types stay here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from gateway.config import RtuBus, TcpBus
from gateway.discovery import MAX_READ
from gateway.errors import UnitUnreachable

RTU_DEVICE_LATENCY_S: Final = 0.05
"""Time a real battery may take to start answering, on top of the wire time."""
TCP_TIMEOUT_S: Final = 1.0


def char_time_s(bus: RtuBus) -> float:
    """Seconds per character on the wire: start bit, data, parity, stop bits."""
    bits = 1 + bus.bytesize + (0 if bus.parity == "N" else 1) + bus.stopbits
    return bits / bus.baudrate


def frame_gap_s(bus: RtuBus) -> float:
    """t3.5: the silence that ends a frame (fixed at 1.75 ms above 19200 baud)."""
    return 0.00175 if bus.baudrate > 19200 else 3.5 * char_time_s(bus)


def read_wire_time_s(bus: RtuBus, count: int) -> float:
    """The least time a read of `count` registers can take on this line.

    Request (8 bytes) and response (5 + 2 x count bytes), each followed by t3.5.
    """
    return (8 + 5 + 2 * count) * char_time_s(bus) + 2 * frame_gap_s(bus)


def response_timeout_s(bus: RtuBus | TcpBus) -> float:
    """Short enough that a silent unit costs its neighbours little, long enough for a full read."""
    if bus.timeout_s is not None:
        return bus.timeout_s
    if isinstance(bus, TcpBus):
        return TCP_TIMEOUT_S
    return read_wire_time_s(bus, MAX_READ) + RTU_DEVICE_LATENCY_S


class ModbusLink:
    """One bus's client. Not safe for concurrent use: the bus poller serialises calls."""

    def __init__(self, bus: RtuBus | TcpBus) -> None:
        self.bus = bus.name
        timeout = response_timeout_s(bus)
        self._client: AsyncModbusSerialClient | AsyncModbusTcpClient
        if isinstance(bus, RtuBus):
            self._client = AsyncModbusSerialClient(
                bus.port,
                baudrate=bus.baudrate,
                bytesize=bus.bytesize,
                parity=bus.parity,
                stopbits=bus.stopbits,
                timeout=timeout,
                retries=0,
                reconnect_delay=0,
                name=bus.name,
            )
        else:
            self._client = AsyncModbusTcpClient(
                bus.host,
                port=bus.port,
                timeout=timeout,
                retries=0,
                reconnect_delay=0,
                name=bus.name,
            )

    async def read(self, unit_id: int, address: int, count: int) -> list[int]:
        """Holding registers; UnitUnreachable on timeout, CRC trouble or an exception reply."""
        await self._ensure_connected(unit_id)
        try:
            reply = await self._client.read_holding_registers(
                address, count=count, device_id=unit_id
            )
        except ModbusException as exc:
            raise UnitUnreachable(self.bus, unit_id, _reason(exc)) from None
        if reply.isError():
            raise UnitUnreachable(self.bus, unit_id, f"exception reply {reply}")
        registers = list(reply.registers)
        if len(registers) != count:
            raise UnitUnreachable(self.bus, unit_id, f"{len(registers)} registers, asked {count}")
        return registers

    async def write(self, unit_id: int, address: int, values: Sequence[int]) -> None:
        """Write holding registers (function 16); UnitUnreachable when refused or unanswered."""
        await self._ensure_connected(unit_id)
        try:
            reply = await self._client.write_registers(address, list(values), device_id=unit_id)
        except ModbusException as exc:
            raise UnitUnreachable(self.bus, unit_id, _reason(exc)) from None
        if reply.isError():
            raise UnitUnreachable(self.bus, unit_id, f"exception reply {reply}")

    def close(self) -> None:
        self._client.close()

    async def _ensure_connected(self, unit_id: int) -> None:
        if self._client.connected:
            return
        if not await self._client.connect():
            raise UnitUnreachable(self.bus, unit_id, "cannot open the bus")


def _reason(exc: ModbusException) -> str:
    return str(exc).splitlines()[0][:200]


def quiet_pymodbus() -> None:
    """pymodbus logs every unanswered request at ERROR; the poller reports lost units itself."""
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
