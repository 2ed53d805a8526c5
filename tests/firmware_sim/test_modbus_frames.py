"""CRC, RTU framing with resync, MBAP, and the FC 3/6/16 handlers."""

from __future__ import annotations

from firmware_sim.battery import SimBattery
from firmware_sim.modbus_frames import (
    Mbap,
    crc16,
    handle_pdu,
    next_request,
    request_length,
    split_mbap,
    with_crc,
)
from protocol.sunspec import SUNS_BASE


def read_request(unit: int, address: int, count: int) -> bytes:
    return with_crc(bytes([unit, 3]) + address.to_bytes(2, "big") + count.to_bytes(2, "big"))


def test_crc_known_vector() -> None:
    assert crc16(bytes.fromhex("01030000000a")) == 0xCDC5
    assert with_crc(bytes.fromhex("01030000000a")) == bytes.fromhex("01030000000ac5cd")


def test_request_lengths_by_function_code() -> None:
    assert request_length(bytes([1, 3])) == 8
    assert request_length(bytes([1, 6])) == 8
    assert request_length(bytes([1, 16, 0, 0, 0, 2])) is None  # byte count not here yet
    assert request_length(bytes([1, 16, 0, 0, 0, 2, 4])) == 13


def test_next_request_skips_a_garbage_prefix() -> None:
    frame = read_request(2, SUNS_BASE, 10)
    buf = bytearray(b"\x00\xff\x13\x03\x99" + frame + b"\x01")
    found, consumed = next_request(buf)
    assert found == frame
    assert consumed == 5 + len(frame)


def test_next_request_ignores_a_bad_crc_and_waits_for_a_partial_frame() -> None:
    bad = bytearray(read_request(1, SUNS_BASE, 10))
    bad[-1] ^= 0xFF
    assert next_request(bad) == (None, 0)
    good = read_request(1, SUNS_BASE, 3)
    assert next_request(bad + good) == (good, len(bad) + len(good))
    assert next_request(good[:5]) == (None, 0)


def test_next_request_bounds_an_endless_stream_of_noise() -> None:
    found, consumed = next_request(bytes(range(256)) * 2)
    assert found is None and consumed == 256


def test_write_multiple_frame_is_found_by_byte_count() -> None:
    pdu = bytes([16]) + (40000).to_bytes(2, "big") + (2).to_bytes(2, "big") + b"\x04\0\1\0\2"
    frame = with_crc(b"\x05" + pdu)
    assert next_request(b"\xaa" + frame) == (frame, 1 + len(frame))


def test_read_and_exceptions() -> None:
    battery = SimBattery.create(1, 2)
    response = handle_pdu(battery, bytes([3]) + SUNS_BASE.to_bytes(2, "big") + b"\x00\x02")
    assert response == bytes([3, 4]) + b"SunS"
    too_many = bytes([3]) + SUNS_BASE.to_bytes(2, "big") + (126).to_bytes(2, "big")
    assert handle_pdu(battery, too_many) == bytes([0x83, 3])
    outside = bytes([3]) + (1000).to_bytes(2, "big") + b"\x00\x02"
    assert handle_pdu(battery, outside) == bytes([0x83, 2])
    assert handle_pdu(battery, bytes([4, 0, 0, 0, 1])) == bytes([0x84, 1])
    write_ro = bytes([6]) + SUNS_BASE.to_bytes(2, "big") + b"\x00\x01"
    assert handle_pdu(battery, write_ro) == bytes([0x86, 2])


def test_write_multiple_with_inconsistent_byte_count_is_illegal_value() -> None:
    battery = SimBattery.create(1, 2)
    pdu = bytes([16]) + (40000).to_bytes(2, "big") + (2).to_bytes(2, "big") + b"\x02\0\1"
    assert handle_pdu(battery, pdu) == bytes([0x90, 3])


def test_mbap_split_and_frame() -> None:
    pdu = bytes([3, 0x9C, 0x40, 0, 2])
    request = Mbap(0x1234, 7).frame(pdu)
    assert request == bytes.fromhex("12340000000607039c400002")
    assert split_mbap(request[:-1]) is None
    header, got, consumed = split_mbap(request + b"\x99") or (None, b"", 0)
    assert header == Mbap(0x1234, 7) and got == pdu and consumed == len(request)
