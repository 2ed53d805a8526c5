"""Modbus TCP: pymodbus and pysunspec2 read the simulator."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import sunspec2.modbus.client as sunspec_client
from pymodbus.client import AsyncModbusTcpClient

from firmware_sim.faults import Fault, FaultKind
from firmware_sim.runtime import Simulator
from protocol.vendor_model import VENDOR
from tests.firmware_sim.running import read_all, running, try_read, walk


def tcp_client(sim: Simulator, timeout: float = 1.0) -> AsyncModbusTcpClient:
    info = sim.info["tcp"]["tcp-1"]
    return AsyncModbusTcpClient(info["host"], port=info["port"], timeout=timeout, retries=0)


def test_pymodbus_tcp_reads_the_same_image() -> None:
    async def scenario() -> None:
        async with running() as sim:
            battery = sim.fleet.unit("tcp-1", 1).battery
            sim.fleet.set_phone("tcp-1", 1, 5, plugged=True)
            client = tcp_client(sim, timeout=0.3)
            await client.connect()
            try:
                image = await read_all(client, 1, battery.register_count)
                assert await try_read(client, 2) is None  # no unit 2 behind this port
            finally:
                client.close()
            assert image == battery.registers()
            assert walk(image)[64900][1].groups[4]["Occ"] == 1

    asyncio.run(scenario())


def test_silent_and_slow_apply_on_tcp() -> None:
    async def scenario() -> None:
        async with running() as sim:
            client = tcp_client(sim, timeout=0.3)
            await client.connect()
            try:
                sim.fleet.inject("tcp-1", 1, Fault(FaultKind.SILENT))
                assert await try_read(client, 1) is None
                sim.fleet.clear("tcp-1", 1, Fault(FaultKind.SILENT))
                sim.fleet.inject("tcp-1", 1, Fault(FaultKind.SLOW, delay_ms=150))
                if not client.connected:
                    await client.connect()
                start = time.monotonic()
                assert await try_read(client, 1) == [0x5375, 0x6E53]
                assert time.monotonic() - start >= 0.15
            finally:
                client.close()

    asyncio.run(scenario())


def scan(host: str, port: int, unit: int) -> Any:
    device = sunspec_client.SunSpecModbusClientDeviceTCP(
        slave_id=unit, ipaddr=host, ipport=port, timeout=2
    )
    try:
        device.scan()
    finally:
        device.close()
    return device


@pytest.mark.parametrize("plain", [False, True])
def test_pysunspec2_scans_and_reads_the_simulator(plain: bool) -> None:
    async def scenario() -> None:
        async with running(plain_sunspec=plain) as sim:
            battery = sim.fleet.unit("tcp-1", 1).battery
            battery.soc_pct = 63.7
            for port in (1, 4, 8):
                sim.fleet.set_phone("tcp-1", 1, port, plugged=True)
            info = sim.info["tcp"]["tcp-1"]
            device = await asyncio.to_thread(scan, info["host"], info["port"], 1)
            ids = [model_id for model_id in device.models if isinstance(model_id, int)]
            assert ids == ([1, 802, 714] if plain else [1, 802, 714, 64900])
            common = device.models[1][0]
            assert common.Mn.cvalue == "chargenet"
            bat = device.models[802][0]
            assert bat.SoC.cvalue == pytest.approx(63.7)
            assert bat.V.cvalue == pytest.approx(battery.voltage_v, abs=0.05)
            assert bat.State.value == 3
            dc = device.models[714][0]
            assert dc.NPrt.value == 8 and len(dc.Prt) == 8
            for index, group in enumerate(dc.Prt):
                assert group.DCW.cvalue == pytest.approx(battery.port_power_w(index), abs=0.01)
                assert group.ID.value == index + 1
            if not plain:
                vendor = device.models[64900][0]
                assert vendor.model_def is None  # unknown to pysunspec2: listed, not decoded
                assert vendor.model_len == VENDOR.length(8)

    asyncio.run(scenario())


def rtu_scan(device_path: str, unit: int) -> Any:
    device = sunspec_client.SunSpecModbusClientDeviceRTU(
        slave_id=unit, name=device_path, baudrate=19200, parity="N", timeout=2
    )
    try:
        device.scan()
    finally:
        device.close()
    return device


def test_pysunspec2_scans_a_serial_line() -> None:
    async def scenario() -> None:
        async with running() as sim:
            battery = sim.fleet.unit("line-1", 2).battery
            battery.soc_pct = 12.5
            path = sim.info["serial"]["line-1"]["device"]
            device = await asyncio.to_thread(rtu_scan, path, 2)
            assert device.models[802][0].SoC.cvalue == pytest.approx(12.5)
            assert len(device.models[714][0].Prt) == 4

    asyncio.run(scenario())
