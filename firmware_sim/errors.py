"""Errors the simulator raises; a Modbus error becomes an exception response on the wire.

```
SimError
├── ScenarioError      the bad key and why
├── FaultError         kind and why (a port out of range, a missing error code)
├── UnknownUnit        line, unit_id (the control API answers 404)
└── ModbusError        code: the exception code the master gets back
    ├── IllegalFunction   01
    ├── IllegalAddress    02
    └── IllegalValue      03
```
"""

from __future__ import annotations


class SimError(Exception):
    """Base of everything the simulator raises on purpose."""


class ScenarioError(SimError):
    """A scenario file is unreadable or a key is wrong; `key` is its dotted path."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"{key}: {why}" if key else why)
        self.key = key
        self.why = why


class FaultError(SimError):
    """A fault that cannot be applied to this unit as asked."""

    def __init__(self, kind: str, why: str) -> None:
        super().__init__(f"{kind}: {why}")
        self.kind = kind
        self.why = why


class UnknownUnit(SimError):
    """No battery with this unit id on this line."""

    def __init__(self, line: str, unit_id: int) -> None:
        super().__init__(f"no unit {unit_id} on line {line!r}")
        self.line = line
        self.unit_id = unit_id


class ModbusError(SimError):
    """A request the device refuses; `code` goes back in the exception response."""

    code = 0x04

    def __init__(self, why: str) -> None:
        super().__init__(f"exception {self.code:02x}: {why}")
        self.why = why


class IllegalFunction(ModbusError):
    code = 0x01


class IllegalAddress(ModbusError):
    code = 0x02


class IllegalValue(ModbusError):
    code = 0x03
