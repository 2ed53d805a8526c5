"""The control API over real HTTP: inject and clear every fault kind, see the registers move."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from firmware_sim.runtime import Simulator
from protocol.sunspec import BATTERY, BATTERY_EVT1, DecodedModel, scaled
from tests.firmware_sim.running import read_all, running, try_read, walk


def http(url: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def call(sim: Simulator, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return await asyncio.to_thread(http, sim.info["control"], method, path, body)


async def models(client: AsyncModbusTcpClient, sim: Simulator) -> dict[int, DecodedModel]:
    battery = sim.fleet.unit("tcp-1", 1).battery
    image = await read_all(client, 1, battery.register_count)
    return {model_id: model for model_id, (_, model) in walk(image).items()}


def evt1(found: dict[int, DecodedModel], name: str) -> bool:
    value = found[802].fixed["Evt1"]
    return isinstance(value, int) and bool(value & 1 << BATTERY_EVT1.index(name))


CASES: list[tuple[dict[str, Any], Any]] = [
    ({"kind": "port_fault", "port": 2, "error": "over_current"},
     lambda m: m[714].groups[1]["DCSta"] == 3 and m[714].groups[1]["DCAlrm"] == 1 << 22),
    ({"kind": "port_fault", "port": 3, "error": "other"},
     lambda m: m[714].groups[2]["DCAlrm"] == 1),
    ({"kind": "over_temp"},
     lambda m: evt1(m, "over_temp_alarm") and m[64900].fixed["BatTmp"] == 650),
    ({"kind": "low_soc"},
     lambda m: scaled(m[802].fixed["SoC"], -1) == 4.0 and evt1(m, "under_soc_min_warning")),
    ({"kind": "battery_fault"}, lambda m: m[802].fixed["State"] == 99),
    ({"kind": "port_disabled", "port": 8}, lambda m: m[64900].groups[7]["Ena"] == 0),
]  # fmt: skip


@pytest.mark.parametrize(("body", "shows"), CASES)
def test_register_faults_inject_and_clear(body: dict[str, Any], shows: Any) -> None:
    target = {"line": "tcp-1", "unit_id": 1}

    async def scenario() -> None:
        async with running(text=NO_LATCH) as sim:
            info = sim.info["tcp"]["tcp-1"]
            client = AsyncModbusTcpClient(info["host"], port=info["port"], timeout=1, retries=0)
            await client.connect()
            try:
                assert not shows(await models(client, sim))
                status, unit = await call(sim, "POST", "/faults", target | body)
                assert status == 200 and unit["faults"] == [body]
                assert shows(await models(client, sim))
                clear = target | {k: v for k, v in body.items() if k in ("kind", "port")}
                status, unit = await call(sim, "DELETE", "/faults", clear)
                assert status == 200 and unit["faults"] == []
                assert not shows(await models(client, sim))
            finally:
                client.close()

    asyncio.run(scenario())


NO_LATCH = """
[defaults]
latch_alarms = false
[[line]]
name = "line-1"
units = [1, 2]
[[tcp]]
name = "tcp-1"
units = [{ unit_id = 1, ports = 8 }]
"""


def test_line_faults_over_http() -> None:
    async def scenario() -> None:
        async with running() as sim:
            line = sim.info["serial"]["line-1"]
            client = AsyncModbusSerialClient(line["device"], baudrate=19200, timeout=0.3, retries=0)
            await client.connect()
            target = {"line": "line-1", "unit_id": 1}
            try:
                for kind in ("silent", "garbage"):
                    assert (await call(sim, "POST", "/faults", target | {"kind": kind}))[0] == 200
                    assert await try_read(client, 1) is None
                    assert await try_read(client, 2) is not None
                    assert (await call(sim, "POST", "/faults/clear", target | {"kind": kind}))[0]
                    assert (await try_read(client, 1) or await try_read(client, 1)) is not None
                slow = target | {"kind": "slow", "delay_ms": 120}
                assert (await call(sim, "POST", "/faults", slow))[0] == 200
                start = time.monotonic()
                assert await try_read(client, 1) is not None
                assert time.monotonic() - start >= 0.12
            finally:
                client.close()

    asyncio.run(scenario())


def test_latched_port_fault_needs_an_alarm_reset() -> None:
    async def scenario() -> None:
        async with running() as sim:
            target = {"line": "tcp-1", "unit_id": 1}
            fault = target | {"kind": "port_fault", "port": 1, "error": "high_temperature"}
            await call(sim, "POST", "/faults", fault)
            await call(sim, "DELETE", "/faults", target | {"kind": "port_fault", "port": 1})
            info = sim.info["tcp"]["tcp-1"]
            client = AsyncModbusTcpClient(info["host"], port=info["port"], timeout=1, retries=0)
            await client.connect()
            try:
                found = await models(client, sim)
                assert found[714].groups[0]["DCSta"] == 3  # still latched
                start = walk(sim.fleet.unit("tcp-1", 1).battery.registers())[802][0]
                reset = await client.write_register(
                    start + 2 + BATTERY.offset("AlmRst"), 1, device_id=1
                )
                assert not reset.isError()
                found = await models(client, sim)
                assert found[714].groups[0]["DCSta"] == 0
            finally:
                client.close()

    asyncio.run(scenario())


def test_units_and_phones() -> None:
    async def scenario() -> None:
        async with running() as sim:
            status, listing = await call(sim, "GET", "/units")
            assert status == 200
            names = [(u["line"], u["unit_id"], u["ports"]) for u in listing["units"]]
            assert names == [("line-1", 1, 4), ("line-1", 2, 4), ("tcp-1", 1, 8)]
            phone = {"line": "line-1", "unit_id": 2, "port": 3, "plugged": True}
            status, unit = await call(sim, "POST", "/phones", phone)
            assert status == 200 and unit["port_states"][2]["occupied"]
            assert unit["port_states"][2]["power_w"] >= 5.0
            battery = sim.fleet.unit("line-1", 2).battery
            assert battery.ports[2].occupied
            status, unit = await call(sim, "POST", "/phones", phone | {"plugged": False})
            assert status == 200 and not battery.ports[2].occupied

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("POST", "/faults", {"line": "nope", "unit_id": 1, "kind": "silent"}, 404, "no unit"),
        ("POST", "/faults", {"line": "tcp-1", "unit_id": 1, "kind": "melt"}, 400, "kind"),
        ("POST", "/faults", {"line": "tcp-1", "unit_id": 1, "kind": "port_fault"}, 400, "port"),
        ("POST", "/faults", {"line": "tcp-1", "unit_id": 1, "kind": "silent", "x": 1}, 400, "x"),
        ("DELETE", "/faults", {"line": "tcp-1", "unit_id": 1, "kind": "silent"}, 400, "active"),
        ("POST", "/phones", {"line": "tcp-1", "unit_id": 1, "port": 99, "plugged": True}, 400,
         "port"),
        ("POST", "/faults", None, 400, "error"),
        ("GET", "/nothing", None, 404, "route"),
    ],
)  # fmt: skip
def test_bad_requests(method: str, path: str, body: Any, status: int, says: str) -> None:
    async def scenario() -> None:
        async with running() as sim:
            got, answer = await call(sim, method, path, body)
            assert got == status
            assert says in json.dumps(answer)
            assert sim.fleet.unit("tcp-1", 1).faults == {}

    asyncio.run(scenario())
