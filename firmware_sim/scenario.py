"""Scenario files: which batteries hang on which line, how the night goes, what breaks when.

TOML validated with pydantic (`extra="forbid"`), so a typo fails with its dotted path
(`line[1].units[0].prots`) instead of being silently ignored.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from firmware_sim.errors import ScenarioError
from firmware_sim.faults import Fault, FaultKind
from protocol.payloads import PortError
from protocol.topics import NAME_RE

UnitId = Annotated[int, Field(ge=1, le=247)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Model):
    """What every unit gets unless it says otherwise."""

    ports: int = Field(default=8, ge=1, le=16)
    rated_wh: float = Field(default=2000.0, gt=0, le=30000)
    soc_pct: float = Field(default=80.0, ge=0, le=100)
    soh_pct: float = Field(default=97.0, ge=0, le=100)
    ambient_c: float = 25.0
    arrival_rate_per_h: float = Field(default=4.0, ge=0)
    vendor_model: bool = True
    latch_alarms: bool = True


class UnitSpec(_Model):
    """One battery; unset fields come from `[defaults]`."""

    unit_id: UnitId
    ports: int | None = Field(default=None, ge=1, le=16)
    rated_wh: float | None = Field(default=None, gt=0, le=30000)
    soc_pct: float | None = Field(default=None, ge=0, le=100)
    soh_pct: float | None = Field(default=None, ge=0, le=100)
    ambient_c: float | None = None
    arrival_rate_per_h: float | None = Field(default=None, ge=0)
    vendor_model: bool | None = None
    latch_alarms: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        """`units = [1, 2]` is short for `units = [{unit_id = 1}, {unit_id = 2}]`."""
        return {"unit_id": data} if isinstance(data, int) else data

    def resolved(self, defaults: Defaults) -> Defaults:
        """This unit's settings with the defaults filled in."""
        mine = self.model_dump(exclude={"unit_id"}, exclude_none=True)
        return defaults.model_copy(update=mine)


class _Bus(_Model):
    name: str
    units: list[UnitSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_units(self) -> Self:
        if not NAME_RE.match(self.name):
            raise ValueError(f"name {self.name!r} must match {NAME_RE.pattern}")
        ids = [unit.unit_id for unit in self.units]
        if len(ids) != len(set(ids)):
            raise ValueError(f"unit ids repeat on {self.name}: {ids}")
        return self


class SerialLineSpec(_Bus):
    """An RS-485 line: a pty pair; bytesize is always 8."""

    baudrate: int = Field(default=19200, ge=300, le=1_000_000)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 2


class TcpSpec(_Bus):
    """A Modbus TCP endpoint with several units behind it; port 0 picks a free one."""

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)


class FaultTarget(_Model):
    """A fault on one unit, as a scenario file and the control API both spell it."""

    line: str
    unit_id: UnitId
    kind: FaultKind
    port: int | None = Field(default=None, ge=1)
    error: PortError | None = None
    delay_ms: int | None = Field(default=None, ge=0)

    def fault(self) -> Fault:
        return Fault(self.kind, self.port, self.error, self.delay_ms)


class FaultSpec(FaultTarget):
    """A fault at `at_s` seconds of simulated time, cleared after `duration_s` if set."""

    at_s: float = Field(ge=0)
    duration_s: float | None = Field(default=None, gt=0)


class Scenario(_Model):
    """A whole simulated night."""

    seed: int = 1
    speed: float = Field(default=1.0, gt=0, le=10000)
    """Simulated seconds per real second."""
    physics: bool = True
    defaults: Defaults = Field(default_factory=Defaults)
    line: list[SerialLineSpec] = []
    tcp: list[TcpSpec] = []
    fault: list[FaultSpec] = []

    @model_validator(mode="after")
    def _check_names(self) -> Self:
        buses: dict[str, set[int]] = {}
        for bus in [*self.line, *self.tcp]:
            if bus.name in buses:
                raise ValueError(f"line name {bus.name!r} is used twice")
            buses[bus.name] = {unit.unit_id for unit in bus.units}
        for number, spec in enumerate(self.fault):
            if spec.unit_id not in buses.get(spec.line, set()):
                raise ValueError(f"fault[{number}]: no unit {spec.unit_id} on {spec.line!r}")
        return self


SHIPPED: tuple[str, ...] = ("demo", "typhoon-night")


def load_scenario(source: str | Path) -> Scenario:
    """A scenario from a file path or the name of a shipped one (`demo`)."""
    if isinstance(source, str) and source in SHIPPED:
        text = resources.files("firmware_sim").joinpath(f"scenarios/{source}.toml").read_text()
        return parse_scenario(text)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError("", f"cannot read {source}: {error.strerror}") from error
    return parse_scenario(text)


def parse_scenario(text: str) -> Scenario:
    """Validate TOML text; ScenarioError names the first bad key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError("", f"not TOML: {error}") from error
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(
            f"[{part}]" if isinstance(part, int) else str(part) for part in first["loc"]
        ).replace(".[", "[")
        raise ScenarioError(key, first["msg"]) from error
