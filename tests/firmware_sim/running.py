"""Helpers for the shell tests: an in-process simulator and a register-image walker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pymodbus.exceptions import ModbusException

from firmware_sim.runtime import Simulator, start_simulator
from firmware_sim.scenario import parse_scenario
from protocol.sunspec import (
    BATTERY,
    COMMON,
    DC_MEASUREMENT,
    END_MODEL_ID,
    SUNS_BASE,
    SUNS_MARKER,
    DecodedModel,
    decode_model,
)
from protocol.vendor_model import VENDOR

MODELS = {m.model_id: m for m in (COMMON, BATTERY, DC_MEASUREMENT, VENDOR)}

ONE_LINE = """
seed = 3
[defaults]
ports = 4
[[line]]
name = "line-1"
baudrate = 19200
parity = "N"
stopbits = 2
units = [1, 2]
[[tcp]]
name = "tcp-1"
units = [{ unit_id = 1, ports = 8 }]
"""


@contextlib.asynccontextmanager
async def running(text: str = ONE_LINE, **kwargs: Any) -> AsyncIterator[Simulator]:
    """A simulator on this loop, without physics unless asked (tests want frozen values)."""
    kwargs.setdefault("physics", False)
    sim = await start_simulator(parse_scenario(text), **kwargs)
    try:
        yield sim
    finally:
        await sim.aclose()


def walk(image: Sequence[int]) -> dict[int, tuple[int, DecodedModel]]:
    """Models by id with their start address, as a master discovers them from 40000."""
    assert tuple(image[:2]) == SUNS_MARKER
    found: dict[int, tuple[int, DecodedModel]] = {}
    at = 2
    while image[at] != END_MODEL_ID:
        model_id, length = image[at], image[at + 1]
        found[model_id] = (
            SUNS_BASE + at,
            decode_model(MODELS[model_id], image[at + 2 : at + 2 + length]),
        )
        at += 2 + length
    assert image[at + 1] == 0 and at + 2 == len(image)  # the end marker, L = 0, nothing after
    return found


async def read_all(client: Any, unit: int, total: int) -> list[int]:
    """`total` registers from 40000 in reads of at most 125."""
    regs: list[int] = []
    while len(regs) < total:
        count = min(125, total - len(regs))
        response = await client.read_holding_registers(
            SUNS_BASE + len(regs), count=count, device_id=unit
        )
        assert not response.isError(), response
        regs += response.registers
    return regs


async def try_read(client: Any, unit: int, address: int = SUNS_BASE, count: int = 2) -> Any:
    """The registers, or None when the unit did not answer properly."""
    try:
        response = await client.read_holding_registers(address, count=count, device_id=unit)
    except ModbusException:
        return None
    return None if response.isError() else response.registers
