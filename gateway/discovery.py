"""SunSpec discovery: walk a unit's model chain instead of hard-coding offsets.

The result, a `UnitLayout`, says where each model we read sits and how a poll reads all
of them in as few requests as Modbus allows (at most 125 registers per read).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from gateway.errors import NotSunSpec
from protocol.payloads import PORT_MAX
from protocol.sunspec import (
    BATTERY,
    DC_MEASUREMENT,
    END_MODEL_ID,
    HEADER_LEN,
    SUNS_BASE,
    SUNS_MARKER,
    ModelDef,
)
from protocol.vendor_model import VENDOR

MAX_READ: Final = 125
"""Registers per read-holding-registers request (Modbus application protocol 6.3)."""
MAX_MODELS: Final = 64
"""A chain longer than this is taken as garbage rather than walked forever."""
POLLED_MODELS: Final[tuple[ModelDef, ...]] = (BATTERY, DC_MEASUREMENT, VENDOR)


class RegisterReader(Protocol):
    """The seam discovery and polling read through (a Modbus link, or a fake in tests)."""

    async def read(self, unit_id: int, address: int, count: int) -> list[int]: ...


@dataclass(frozen=True, slots=True)
class ModelSpan:
    """Where one model sits: `address` is its ID register; `length` is its L."""

    model_id: int
    address: int
    length: int

    @property
    def end(self) -> int:
        return self.address + HEADER_LEN + self.length


@dataclass(frozen=True, slots=True)
class UnitLayout:
    """A unit's models by id, and the reads one poll takes."""

    models: dict[int, ModelSpan]
    reads: tuple[tuple[int, int], ...]

    @property
    def has_vendor_model(self) -> bool:
        return VENDOR.model_id in self.models

    @property
    def registers_per_poll(self) -> int:
        return sum(count for _, count in self.reads)


async def discover(reader: RegisterReader, bus: str, unit_id: int) -> UnitLayout:
    """Read the "SunS" marker and the model headers; NotSunSpec when the chain is unusable."""
    marker = await reader.read(unit_id, SUNS_BASE, 2)
    if tuple(marker) != SUNS_MARKER:
        raise NotSunSpec(bus, unit_id, f"no SunS marker at {SUNS_BASE}")
    models: dict[int, ModelSpan] = {}
    address = SUNS_BASE + 2
    for _ in range(MAX_MODELS):
        model_id, length = await reader.read(unit_id, address, HEADER_LEN)
        if model_id == END_MODEL_ID:
            break
        models.setdefault(model_id, ModelSpan(model_id, address, length))
        address += HEADER_LEN + length
    else:
        raise NotSunSpec(bus, unit_id, f"no end marker after {MAX_MODELS} models")
    return layout_for(models, bus, unit_id)


def layout_for(models: dict[int, ModelSpan], bus: str, unit_id: int) -> UnitLayout:
    """Check the models we need are there and plan the poll's reads."""
    for required in (BATTERY, DC_MEASUREMENT):
        span = models.get(required.model_id)
        if span is None:
            raise NotSunSpec(bus, unit_id, f"no model {required.model_id} ({required.name})")
        if span.length < required.fixed_len:
            raise NotSunSpec(bus, unit_id, f"model {required.model_id} is too short")
    ports = DC_MEASUREMENT.repeats(models[DC_MEASUREMENT.model_id].length)
    if ports > PORT_MAX:  # the contract could not carry its state: refuse it here, once
        raise NotSunSpec(bus, unit_id, f"{ports} ports, at most {PORT_MAX}")
    polled = [models[m.model_id] for m in POLLED_MODELS if m.model_id in models]
    return UnitLayout(models, plan_reads(polled))


def plan_reads(spans: Sequence[ModelSpan], max_read: int = MAX_READ) -> tuple[tuple[int, int], ...]:
    """Merge adjacent models into runs, then cut each run into reads of at most `max_read`.

    Headers are read with their models: they cost nothing extra in a merged run and let
    the poller notice a unit whose layout changed (a swapped battery).
    """
    runs: list[list[int]] = []
    for span in sorted(spans, key=lambda s: s.address):
        if runs and runs[-1][1] == span.address:
            runs[-1][1] = span.end
        else:
            runs.append([span.address, span.end])
    reads: list[tuple[int, int]] = []
    for start, end in runs:
        for at in range(start, end, max_read):
            reads.append((at, min(max_read, end - at)))
    return tuple(reads)


class RegisterImage:
    """The registers one poll read, merged into contiguous blocks for slicing by address."""

    def __init__(self, reads: Sequence[tuple[int, list[int]]]) -> None:
        self._blocks: list[tuple[int, list[int]]] = []
        for address, values in sorted(reads, key=lambda r: r[0]):
            if self._blocks and self._blocks[-1][0] + len(self._blocks[-1][1]) == address:
                self._blocks[-1][1].extend(values)
            else:
                self._blocks.append((address, list(values)))

    def slice(self, address: int, count: int) -> list[int] | None:
        """`count` registers from `address`, or None when the poll did not read them all."""
        for start, values in self._blocks:
            if start <= address and address + count <= start + len(values):
                return values[address - start : address - start + count]
        return None


def model_body(layout: UnitLayout, model_id: int, image: RegisterImage) -> list[int] | None:
    """The registers after one model's header; None when the unit has no such model.

    Raises LookupError when the header read now differs from the one discovered: the
    battery on this unit id was replaced and must be discovered again.
    """
    span = layout.models.get(model_id)
    if span is None:
        return None
    registers = image.slice(span.address, HEADER_LEN + span.length)
    if registers is None or registers[0] != model_id or registers[1] != span.length:
        raise LookupError(f"model {model_id} is no longer at {span.address}")
    return registers[HEADER_LEN:]
