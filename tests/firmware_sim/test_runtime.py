"""The simulation clock: accelerated physics and scheduled faults."""

from __future__ import annotations

import asyncio

from firmware_sim.faults import FaultKind
from tests.conditions import async_wait_until
from tests.firmware_sim.running import running

FAST = """
seed = 11
speed = 400
[defaults]
ports = 8
arrival_rate_per_h = 30
[[tcp]]
name = "tcp-1"
units = [1]
[[fault]]
at_s = 50
duration_s = 200
line = "tcp-1"
unit_id = 1
kind = "over_temp"
"""


def test_scheduled_fault_comes_and_goes() -> None:
    async def scenario() -> None:
        async with running(FAST, physics=False) as sim:
            unit = sim.fleet.unit("tcp-1", 1)
            await async_wait_until(lambda: unit.faults, 5, "scheduled fault")
            assert (FaultKind.OVER_TEMP, None) in unit.faults
            assert unit.battery.effective_temp_c == 65.0
            await async_wait_until(lambda: not unit.faults, 5, "scheduled clear")
            assert unit.battery.effective_temp_c == 25.0  # no physics: frozen at ambient

    asyncio.run(scenario())


def test_accelerated_physics_brings_phones_and_drains_the_battery() -> None:
    async def scenario() -> None:
        async with running(FAST, physics=True) as sim:
            battery = sim.fleet.unit("tcp-1", 1).battery
            await async_wait_until(
                lambda: sum(p.occupied for p in battery.ports) >= 2, 8, "phones arriving"
            )
            await async_wait_until(lambda: battery.soc_pct < 79.5, 8, "SoC falling")
            assert battery.heartbeat > 0

    asyncio.run(scenario())
