"""MQTT payload models, version 1 of the wire contract.

Every gateway->server message carries `seq` (monotonic per gateway, across restarts),
`ts` (when it was measured, ISO 8601 UTC) and `historical` (replayed from the outbox).
Unknown fields are rejected, so a typo on either side fails loudly in tests instead of
being silently dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Final, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from protocol.topics import UnitAddress

CONTRACT_VERSION: Final = 1
SEQ_MAX: Final = 2**63 - 1
"""A seq is a signed 64-bit integer on every store (BIGINT)."""
PORT_MAX: Final = 64
"""USB ports one battery may report (a port number is 1..PORT_MAX)."""
UNITS_MAX: Final = 4096
"""Units one gateway may list in its inventory."""
NAMES_MAX: Final = 64
"""Alarm names one battery may report at once."""


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp needs a timezone")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00: a ValueError, so pydantic refuses it
        raise ValueError("timestamp outside the years 1..9999 in UTC") from None


def format_ts(value: datetime) -> str:
    """`2026-11-24T09:00:00.000Z`: UTC, milliseconds, Z; the year always in four digits
    (strftime writes year 999 as `999`, which no ISO 8601 parser reads back)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# Booleans and integers are strict: `"yes"` is no bool and `1.0` no int, so a gateway bug
# fails loudly as malformed rather than being read as something it did not say.

Timestamp = Annotated[
    datetime, AfterValidator(_require_utc), PlainSerializer(format_ts, return_type=str)
]


class PortStatus(StrEnum):
    """OCPP 1.6 connector states, as far as a USB port has them."""

    AVAILABLE = "available"
    CHARGING = "charging"
    FINISHING = "finishing"
    UNAVAILABLE = "unavailable"
    FAULTED = "faulted"


class PortError(StrEnum):
    """OCPP-style error codes; `other` comes with a `vendor_code`."""

    NONE = "none"
    OVER_CURRENT = "over_current"
    HIGH_TEMPERATURE = "high_temperature"
    OVER_VOLTAGE = "over_voltage"
    UNDER_VOLTAGE = "under_voltage"
    POWER_SWITCH_FAILURE = "power_switch_failure"
    INTERNAL_ERROR = "internal_error"
    OTHER = "other"


class EventKind(StrEnum):
    ALARM_RAISED = "alarm_raised"
    ALARM_CLEARED = "alarm_cleared"
    PORT_FAULTED = "port_faulted"
    PORT_RECOVERED = "port_recovered"
    UNIT_LOST = "unit_lost"
    UNIT_FOUND = "unit_found"


class CommandAction(StrEnum):
    ENABLE_PORT = "enable_port"
    DISABLE_PORT = "disable_port"
    SET_DISPLAY = "set_display"
    RESET_ALARMS = "reset_alarms"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Envelope(_Model):
    """Fields every gateway->server message carries."""

    v: Literal[1] = CONTRACT_VERSION
    seq: StrictInt = Field(ge=0, le=SEQ_MAX)
    ts: Timestamp
    historical: StrictBool = False


class BatteryState(_Model):
    soc_pct: float | None
    soh_pct: float | None
    voltage_v: float | None
    current_a: float | None
    """Negative while discharging."""
    power_w: float | None
    temp_c: float | None
    rated_wh: float | None
    """Energy when full (SunSpec WHRtg): SoC x rated_wh is what is left to give."""
    state: str | None
    """SunSpec 802 State in lower case (`connected`, `fault`, ...)."""
    alarms: list[Annotated[str, Field(max_length=64)]] = Field(max_length=NAMES_MAX)
    """Active Evt1 bits in lower case (`over_temp_alarm`, ...)."""


class PortState(_Model):
    port: StrictInt = Field(ge=1, le=PORT_MAX)
    status: PortStatus
    occupied: StrictBool | None
    """None on a battery without the vendor model."""
    enabled: StrictBool | None
    power_w: float | None
    energy_wh: float | None
    temp_c: float | None
    error: PortError = PortError.NONE
    vendor_code: StrictInt | None = Field(default=None, ge=0, le=2**32 - 1)
    """The raw DCAlrm bits when `error` is `other`."""
    display_code: str | None = None
    session_s: StrictInt | None = Field(default=None, ge=0, le=2**32 - 1)


class UnitState(Envelope):
    """Full snapshot of one battery and its ports; `online` false when it stopped answering."""

    online: StrictBool
    battery: BatteryState | None
    ports: list[PortState] = Field(max_length=PORT_MAX)

    @field_validator("ports")
    @classmethod
    def _one_entry_per_port(cls, ports: list[PortState]) -> list[PortState]:
        numbers = [p.port for p in ports]
        if len(set(numbers)) != len(numbers):
            raise ValueError("each port may appear once")
        return ports


class UnitEvent(Envelope):
    """One thing a crew or the booking engine must hear about; `event_id` is unique."""

    event_id: str = Field(min_length=8, max_length=64)
    kind: EventKind
    port: StrictInt | None = Field(default=None, ge=1, le=PORT_MAX)
    alarm: str | None = None
    error: PortError | None = None
    detail: str | None = None


class GatewayStatus(Envelope):
    """Birth (`online`, retained) or Last Will (`offline`, retained)."""

    state: Literal["online", "offline"]
    boot_id: str
    version: str
    units: list[Annotated[str, Field(max_length=80)]] = Field(max_length=UNITS_MAX)
    seq_run: str | None = Field(default=None, max_length=64)
    """Names the outbox that numbers this gateway's seqs. A new value (a spare gateway, a
    lost outbox) means `seq` started again; None from a gateway that does not say."""


class CommandResult(Envelope):
    cmd_id: str
    ok: StrictBool
    error: str | None = None


RECEIPT_RANGES_MAX: Final = 1000
"""Seq ranges one receipt may carry; a server with more to say sends several."""


class Receipt(_Model):
    """Server->gateway: these seqs of that run are stored for good (or refused for good as
    malformed), so the gateway deletes them from its outbox and never sends them again.

    Broker acknowledgement (PUBACK) only says the broker took a message; a broker may
    still drop it (shared subscriptions with every member away, a queue limit). A message
    the broker took but no receipt covers is sent again after a while (`historical`).
    """

    v: Literal[1] = CONTRACT_VERSION
    seq_run: str = Field(min_length=1, max_length=64)
    seqs: list[tuple[StrictInt, StrictInt]] = Field(min_length=1, max_length=RECEIPT_RANGES_MAX)
    """Inclusive (first, last) ranges."""

    @field_validator("seqs")
    @classmethod
    def _ranges_are_ordered(cls, seqs: list[tuple[int, int]]) -> list[tuple[int, int]]:
        if any(not 0 <= first <= last <= SEQ_MAX for first, last in seqs):
            raise ValueError("each range is (first, last) with 0 <= first <= last")
        return seqs


DISPLAY_CODE_MAX: Final = 8


class Command(_Model):
    """Server->gateway: act on one battery. `port` for port actions, `value` for the display."""

    v: Literal[1] = CONTRACT_VERSION
    cmd_id: str = Field(min_length=1, max_length=64)
    unit: str
    action: CommandAction
    port: int | None = Field(default=None, ge=1, le=PORT_MAX)
    value: str | None = Field(default=None, max_length=DISPLAY_CODE_MAX)

    @model_validator(mode="after")
    def _check_arguments(self) -> Self:
        UnitAddress.parse(self.unit)
        if self.action != CommandAction.RESET_ALARMS and self.port is None:
            raise ValueError(f"{self.action} needs a port")
        if self.action == CommandAction.SET_DISPLAY and not (self.value or "").isascii():
            raise ValueError("set_display needs an ASCII value")
        if self.action == CommandAction.SET_DISPLAY and self.value is None:
            raise ValueError("set_display needs a value")
        return self

    @property
    def unit_address(self) -> UnitAddress:
        return UnitAddress.parse(self.unit)
