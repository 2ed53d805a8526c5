"""Errors the gateway raises; expected trouble on the line becomes state and events instead.

```
GatewayError
├── ConfigError           the bad key and why
├── UnitError             bus, unit_id, why
│   ├── UnitUnreachable   timeout, CRC trouble, exception reply
│   └── NotSunSpec        no "SunS" marker, or no model 802/714
└── CommandFailed         cmd_id and why (answered on cmd/result, never raised to main)
```
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of everything the gateway raises on purpose."""


class ConfigError(GatewayError):
    """The config file is unreadable or a key is wrong; `key` is its dotted path."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"{key}: {why}" if key else why)
        self.key = key
        self.why = why


class UnitError(GatewayError):
    """Trouble with one unit on one bus."""

    def __init__(self, bus: str, unit_id: int, why: str) -> None:
        super().__init__(f"{bus}.{unit_id}: {why}")
        self.bus = bus
        self.unit_id = unit_id
        self.why = why


class UnitUnreachable(UnitError):
    """A unit did not answer (timeout, CRC error, exception response)."""


class NotSunSpec(UnitError):
    """A unit answered but is not a SunSpec battery we can read."""


class CommandFailed(GatewayError):
    """A command could not be carried out; the reason goes back on cmd/result."""

    def __init__(self, cmd_id: str, why: str) -> None:
        super().__init__(f"command {cmd_id}: {why}")
        self.cmd_id = cmd_id
        self.why = why
