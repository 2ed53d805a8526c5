"""The device side of Modbus as pure functions: CRC, RTU and MBAP framing, FC 3/6/16.

Our own code rather than pymodbus' server, so that the simulator controls every byte and
every microsecond on the line (wire time, silence, garbage). Nothing here touches a file
descriptor or a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from firmware_sim.errors import IllegalFunction, IllegalValue, ModbusError

READ_HOLDING: Final = 3
WRITE_SINGLE: Final = 6
WRITE_MULTIPLE: Final = 16
MAX_READ: Final = 125
MAX_WRITE: Final = 123
MAX_RTU_FRAME: Final = 256
MBAP_LEN: Final = 7

_FIXED_LENGTH: Final = {1: 8, 2: 8, 3: 8, 4: 8, 5: 8, 6: 8, 7: 4, 11: 4, 12: 4, 17: 4}
"""Request lengths (with unit id and CRC) of the function codes whose length is fixed."""
_COUNTED: Final = frozenset({15, 16})
"""Requests whose length is 9 + the byte count at offset 6."""


class Registers(Protocol):
    """What a PDU handler needs from a battery: its holding registers."""

    def read(self, address: int, count: int) -> list[int]: ...

    def write(self, address: int, values: Sequence[int]) -> None: ...


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE: Final = _crc_table()


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def with_crc(frame: bytes) -> bytes:
    """An RTU frame: unit id + PDU, then the CRC."""
    return frame + crc16(frame).to_bytes(2, "little")


def crc_ok(frame: bytes | bytearray) -> bool:
    return len(frame) >= 4 and crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")


def request_length(buf: bytes | bytearray, start: int = 0) -> int | None:
    """Length of the RTU request at `start`, from its function code; None if unknowable yet."""
    if len(buf) - start < 2:
        return None
    function = buf[start + 1]
    if function in _FIXED_LENGTH:
        return _FIXED_LENGTH[function]
    if function in _COUNTED and len(buf) - start > 6:
        return 9 + buf[start + 6]
    return None


def next_request(buf: bytes | bytearray) -> tuple[bytes | None, int]:
    """The first complete, CRC-valid request in `buf` and how many bytes to consume.

    Bytes before it are noise and are consumed with it; a frame with a bad CRC is skipped
    like a real device skips it. With no complete frame, nothing is consumed unless the
    buffer outgrew any frame (then all but the last frame's worth goes).
    """
    for start in range(len(buf)):
        length = request_length(buf, start)
        if length is None or start + length > len(buf):
            continue
        frame = bytes(buf[start : start + length])
        if crc_ok(frame):
            return frame, start + length
    return None, max(0, len(buf) - MAX_RTU_FRAME)


@dataclass(frozen=True, slots=True)
class Mbap:
    """The Modbus TCP header: transaction id (echoed), protocol id 0, unit id."""

    transaction_id: int
    unit_id: int

    def frame(self, pdu: bytes) -> bytes:
        header = self.transaction_id.to_bytes(2, "big") + b"\0\0"
        return header + (len(pdu) + 1).to_bytes(2, "big") + bytes([self.unit_id]) + pdu


def split_mbap(buf: bytes | bytearray) -> tuple[Mbap, bytes, int] | None:
    """(header, pdu, bytes consumed) for the first complete TCP frame, None if incomplete."""
    if len(buf) < MBAP_LEN:
        return None
    length = int.from_bytes(buf[4:6], "big")
    if len(buf) < 6 + length:
        return None
    header = Mbap(int.from_bytes(buf[0:2], "big"), buf[6])
    return header, bytes(buf[MBAP_LEN : 6 + length]), 6 + length


def exception_pdu(function: int, code: int) -> bytes:
    return bytes([(function | 0x80) & 0xFF, code])


def handle_pdu(device: Registers, pdu: bytes) -> bytes:
    """The response PDU to a request PDU: data, or an exception response."""
    function = pdu[0] if pdu else 0
    try:
        handler = _HANDLERS.get(function)
        if handler is None:
            raise IllegalFunction(f"function {function} is not supported")
        return handler(device, pdu)
    except ModbusError as error:
        return exception_pdu(function, error.code)


def _words(pdu: bytes, at: int) -> int:
    if len(pdu) < at + 2:
        raise IllegalValue("request too short")
    return int.from_bytes(pdu[at : at + 2], "big")


def _read_holding(device: Registers, pdu: bytes) -> bytes:
    address, count = _words(pdu, 1), _words(pdu, 3)
    if not 1 <= count <= MAX_READ:
        raise IllegalValue(f"count {count} is outside 1..{MAX_READ}")
    values = device.read(address, count)
    body = b"".join(v.to_bytes(2, "big") for v in values)
    return bytes([READ_HOLDING, len(body)]) + body


def _write_single(device: Registers, pdu: bytes) -> bytes:
    address, value = _words(pdu, 1), _words(pdu, 3)
    device.write(address, [value])
    return pdu[:5]


def _write_multiple(device: Registers, pdu: bytes) -> bytes:
    address, count = _words(pdu, 1), _words(pdu, 3)
    byte_count = pdu[5] if len(pdu) > 5 else -1
    if not 1 <= count <= MAX_WRITE or byte_count != 2 * count or len(pdu) != 6 + byte_count:
        raise IllegalValue(f"count {count} / byte count {byte_count} do not agree")
    values = [_words(pdu, 6 + 2 * i) for i in range(count)]
    device.write(address, values)
    return pdu[:5]


_HANDLERS: Final[Mapping[int, Callable[[Registers, bytes], bytes]]] = {
    READ_HOLDING: _read_holding,
    WRITE_SINGLE: _write_single,
    WRITE_MULTIPLE: _write_multiple,
}
