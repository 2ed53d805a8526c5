"""Real pty lines read with pymodbus: values, wire time, and faults on a shared line."""

from __future__ import annotations

import asyncio
import time

import pytest
from pymodbus.client import AsyncModbusSerialClient

from firmware_sim.faults import Fault, FaultKind
from firmware_sim.serial_line import LineTiming, schedule
from protocol.sunspec import SUNS_BASE, scaled
from protocol.vendor_model import VENDOR
from tests.firmware_sim.running import read_all, running, try_read, walk


def client_for(line: dict[str, object], timeout: float = 1.0) -> AsyncModbusSerialClient:
    """A pymodbus client for a line from the JSON line.

    Always parity N on the pty: Linux ptys drop PARENB, and pyserial's second
    reconfiguration (pymodbus sets a timeout after opening) then fails with EINVAL. The
    simulator still times an 8E1 line as 11 bits per character.
    """
    return AsyncModbusSerialClient(
        str(line["device"]),
        baudrate=int(str(line["baudrate"])),
        parity="N",
        stopbits=int(str(line["stopbits"])),
        timeout=timeout,
        retries=0,
    )


def test_timing_arithmetic() -> None:
    timing = LineTiming(19200, "N", 2)
    assert timing.bits_per_char == 11 and LineTiming(19200, "E", 1).bits_per_char == 11
    assert timing.t35_s == pytest.approx(3.5 * 11 / 19200)
    assert LineTiming(115200, "N", 1).t35_s == 0.00175
    slot = schedule(10.0, 8, 205, timing)
    assert slot.reply_at == pytest.approx(10.0 + (8 + 3.5 + 205) * 11 / 19200)
    assert slot.free_at == pytest.approx(slot.reply_at + timing.t35_s)
    silent = schedule(10.0, 8, None, timing)
    assert silent.free_at == pytest.approx(10.0 + (8 + 3.5) * 11 / 19200)


def test_pymodbus_reads_the_whole_image() -> None:
    async def scenario() -> None:
        async with running() as sim:
            battery = sim.fleet.unit("line-1", 2).battery
            battery.soc_pct = 42.3
            client = client_for(sim.info["serial"]["line-1"])
            await client.connect()
            try:
                image = await read_all(client, 2, battery.register_count)
            finally:
                client.close()
            assert image == battery.registers()
            models = walk(image)
            bat = models[802][1].fixed
            assert scaled(bat["SoC"], bat["SoC_SF"]) == pytest.approx(42.3)
            assert models[714][1].fixed["NPrt"] == 4

    asyncio.run(scenario())


@pytest.mark.parametrize(("parity", "stopbits"), [("N", 2), ("E", 1)])
def test_reads_take_at_least_their_wire_time(parity: str, stopbits: int) -> None:
    text = f'[[line]]\nname = "l"\nparity = "{parity}"\nstopbits = {stopbits}\nunits = [1]'
    reads = 6

    async def scenario() -> None:
        async with running(text) as sim:
            timing = sim.lines[0].timing
            client = client_for(sim.info["serial"]["l"])
            await client.connect()
            try:
                start = time.monotonic()
                for _ in range(reads):
                    response = await client.read_holding_registers(
                        SUNS_BASE, count=100, device_id=1
                    )
                    assert len(response.registers) == 100
                elapsed = time.monotonic() - start
            finally:
                client.close()
            per_read = timing.wire_s(8 + 5 + 200) + timing.t35_s
            theoretical = reads * per_read + (reads - 1) * timing.t35_s
            assert elapsed >= theoretical * 0.98
            assert elapsed < theoretical * 2.0  # and not wildly slow either

    asyncio.run(scenario())


def test_garbage_breaks_reads_until_cleared() -> None:
    async def scenario() -> None:
        async with running() as sim:
            client = client_for(sim.info["serial"]["line-1"], timeout=0.3)
            await client.connect()
            try:
                sim.fleet.inject("line-1", 1, Fault(FaultKind.GARBAGE))
                results = [await try_read(client, 1) for _ in range(3)]
                assert results == [None, None, None]
                sim.fleet.clear("line-1", 1, Fault(FaultKind.GARBAGE))

                async def answers() -> bool:
                    return bool(await try_read(client, 1) == [0x5375, 0x6E53])

                ok = [await answers() for _ in range(3)]
                assert ok[-1] and ok[-2]  # the line is usable again
            finally:
                client.close()

    asyncio.run(scenario())


def test_silent_unit_does_not_silence_its_neighbour() -> None:
    async def scenario() -> None:
        async with running() as sim:
            client = client_for(sim.info["serial"]["line-1"], timeout=0.3)
            await client.connect()
            try:
                sim.fleet.inject("line-1", 1, Fault(FaultKind.SILENT))
                assert await try_read(client, 1) is None
                assert await try_read(client, 2) == [0x5375, 0x6E53]
                assert await try_read(client, 9) is None  # nobody has unit 9
                assert await try_read(client, 2) == [0x5375, 0x6E53]
                sim.fleet.clear("line-1", 1, Fault(FaultKind.SILENT))
                assert await try_read(client, 1) == [0x5375, 0x6E53]
            finally:
                client.close()

    asyncio.run(scenario())


def test_slow_unit_answers_late() -> None:
    async def scenario() -> None:
        async with running() as sim:
            client = client_for(sim.info["serial"]["line-1"])
            await client.connect()
            try:
                sim.fleet.inject("line-1", 2, Fault(FaultKind.SLOW, delay_ms=200))
                start = time.monotonic()
                assert await try_read(client, 2) == [0x5375, 0x6E53]
                assert time.monotonic() - start >= 0.2
            finally:
                client.close()

    asyncio.run(scenario())


def test_writes_through_the_line() -> None:
    async def scenario() -> None:
        async with running() as sim:
            battery = sim.fleet.unit("line-1", 1).battery
            vendor_at, _ = walk(battery.registers())[VENDOR.model_id]
            ena = vendor_at + 2 + VENDOR.offset("Ena", 2)
            code = vendor_at + 2 + VENDOR.offset("Code", 0)
            client = client_for(sim.info["serial"]["line-1"])
            await client.connect()
            try:
                response = await client.write_register(ena, 0, device_id=1)
                assert not response.isError()
                response = await client.write_registers(code, [0x4B37, 0x5132], device_id=1)
                assert not response.isError()
                refused = await client.write_register(SUNS_BASE + 4, 1, device_id=1)
                assert refused.isError() and refused.exception_code == 2
            finally:
                client.close()
            assert not battery.ports[2].enabled
            assert battery.ports[0].display_code == "K7Q2"

    asyncio.run(scenario())
