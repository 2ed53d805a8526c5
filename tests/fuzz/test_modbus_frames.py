"""Door: the Modbus line. The simulator's RTU framing survives any garbage on the serial
line, its PDU handlers answer any request with data or an exception response, and the
gateway's SunSpec decoding of whatever registers a device returns gives a valid payload or
a documented refusal (NotSunSpec, LookupError), never another exception.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from hypothesis import event, given
from hypothesis import strategies as st

from firmware_sim.battery import SimBattery
from firmware_sim.modbus_frames import (
    MAX_RTU_FRAME,
    MBAP_LEN,
    crc_ok,
    handle_pdu,
    next_request,
    split_mbap,
    with_crc,
)
from gateway.discovery import RegisterImage, discover
from gateway.errors import NotSunSpec
from gateway.snapshot import decode_unit
from protocol.payloads import UnitState
from protocol.sunspec import DC_MEASUREMENT, END_MODEL_ID, HEADER_LEN, SUNS_BASE

registers = st.integers(0, 0xFFFF)
unit_ids = st.integers(1, 247)
read_pdus = st.builds(lambda a, n: bytes([3]) + a.to_bytes(2, "big") + n.to_bytes(2, "big"),
                      st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))  # fmt: skip
write_pdus = st.builds(
    lambda a, values: bytes([16]) + a.to_bytes(2, "big") + len(values).to_bytes(2, "big")
    + bytes([2 * len(values)]) + b"".join(v.to_bytes(2, "big") for v in values),
    st.integers(0, 0xFFFF), st.lists(registers, min_size=1, max_size=123),
)  # fmt: skip
requests = st.builds(lambda unit, pdu: with_crc(bytes([unit]) + pdu), unit_ids,
                     read_pdus | write_pdus)  # fmt: skip


def drain(buf: bytearray) -> list[bytes]:
    """What `SerialLine` does with what arrived: take frames until none is complete."""
    frames = []
    while True:
        before = len(buf)
        frame, consumed = next_request(buf)
        assert 0 <= consumed <= before
        if frame is not None:
            assert crc_ok(frame) and consumed >= len(frame)
            assert bytes(buf[consumed - len(frame) : consumed]) == frame
            frames.append(frame)
        del buf[:consumed]
        if frame is None:
            assert len(buf) <= MAX_RTU_FRAME or (consumed == 0 and before <= MAX_RTU_FRAME)
            return frames


@given(noise=st.binary(max_size=600))
def test_any_bytes_on_the_line_end_in_frames_with_a_good_crc_and_a_bounded_buffer(
    noise: bytes,
) -> None:
    buf = bytearray(noise)
    frames = drain(buf)
    assert len(buf) <= MAX_RTU_FRAME
    event(f"frames found: {min(len(frames), 2)}")


@given(before=st.binary(max_size=40), frame=requests, after=st.binary(max_size=5))
def test_a_valid_frame_is_found_behind_any_noise(before: bytes, frame: bytes,
                                                 after: bytes) -> None:  # fmt: skip
    frames = drain(bytearray(before + frame + after))
    assert frame in frames  # noise may itself hold a frame, never hide this one


@given(frame=requests, data=st.data())
def test_any_single_corrupted_byte_is_refused_by_the_crc(frame: bytes,
                                                         data: st.DataObject) -> None:  # fmt: skip
    at = data.draw(st.integers(0, len(frame) - 1))
    flip = data.draw(st.integers(1, 255))
    bad = bytearray(frame)
    bad[at] ^= flip
    assert not crc_ok(bad)
    found, _ = next_request(bad)
    assert found is None or found != bytes(bad)  # never the corrupted frame itself
    event("refused: CRC")


@given(pdu=st.binary(max_size=260) | read_pdus | write_pdus, ports=st.integers(0, 8))
def test_any_pdu_gets_data_or_an_exception_response(pdu: bytes, ports: int) -> None:
    battery = SimBattery.create(1, ports)
    answer = handle_pdu(battery, pdu)
    function = pdu[0] if pdu else 0
    if answer[0] & 0x80:
        assert answer == bytes([(function | 0x80) & 0xFF, answer[1]]) and answer[1] in (1, 2, 3)
        event(f"refused: exception {answer[1]}")
    else:
        assert answer[0] == function and function in (3, 6, 16)
        if function == 3:
            assert answer[1] == len(answer) - 2 == 2 * int.from_bytes(pdu[3:5], "big")
        event(f"answered FC {function}")


@given(buf=st.binary(max_size=300))
def test_any_tcp_bytes_split_into_whole_frames_or_wait(buf: bytes) -> None:
    found = split_mbap(buf)
    if found is None:
        event("refused: incomplete (waits)")
        return
    header, pdu, consumed = found
    assert MBAP_LEN - 1 <= consumed <= len(buf) and header.unit_id == buf[6]
    assert len(pdu) == max(0, consumed - MBAP_LEN)


class Registers:
    """A device whose registers are whatever the test says (0 where it says nothing)."""

    def __init__(self, image: dict[int, int]) -> None:
        self.image = image

    async def read(self, unit_id: int, address: int, count: int) -> list[int]:
        return [self.image.get(a, 0) for a in range(address, address + count)]


@given(ports=st.integers(0, 8), edits=st.dictionaries(st.integers(0, 400), registers,
                                                      max_size=30),
       dc_ports=st.none() | st.integers(0, 300))  # fmt: skip
def test_any_register_values_decode_to_a_valid_state_or_are_refused(
    ports: int, edits: dict[int, int], dc_ports: int | None
) -> None:
    """A real battery's map with some registers overwritten (headers, scale factors,
    sentinels, counts), its DC model perhaps claiming `dc_ports` ports (the chain ending
    after it): discovery and decoding refuse it or give what the contract allows."""
    battery = SimBattery.create(1, ports)
    image = dict(enumerate(battery.registers(), start=SUNS_BASE))
    if dc_ports is not None:
        header = next(a for a, v in image.items() if v == DC_MEASUREMENT.model_id)
        image[header + 1] = length = DC_MEASUREMENT.length(dc_ports)
        image[header + HEADER_LEN + length] = END_MODEL_ID
    image.update({SUNS_BASE + offset: value for offset, value in edits.items()})
    device = Registers(image)
    try:
        layout = asyncio.run(discover(device, "rs485-1", 1))
        reads = [(a, asyncio.run(device.read(1, a, n))) for a, n in layout.reads]
        reading = decode_unit(layout, RegisterImage(reads))
    except NotSunSpec:
        event("refused: NotSunSpec")
        return
    except LookupError:
        event("refused: LookupError")
        return
    ts = datetime(2026, 11, 24, 9, tzinfo=UTC)
    state = UnitState(seq=1, ts=ts, online=True, battery=reading.battery, ports=reading.ports)
    assert UnitState.model_validate_json(state.model_dump_json()) == state
    event("decoded")
