"""What an operator types about a station and its batteries, validated once, here.

The API, the CSV import and the demo data all go through these models, so a station is
valid by the same rules whichever way it arrives, and an error names the field.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from protocol.topics import NAME_RE, UnitAddress
from server.api.schemas import Text

STATION_ID_RE: Final = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""Lower case, digits, '-' and '_': safe in a URL path and in a dedupe key."""
HHMM_RE: Final = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]\Z")
MINUTES_PER_DAY: Final = 24 * 60


def _hhmm(value: str | None) -> str | None:
    if value is not None and not HHMM_RE.match(value):
        raise ValueError(f"{value!r} is not a time of day 'HH:MM' (00:00 to 23:59)")
    return value


def _gw_id(value: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError(f"gateway id {value!r} must match {NAME_RE.pattern}")
    return value


def _unit(value: str) -> str:
    return str(UnitAddress.parse(value))


TimeOfDay = Annotated[str | None, AfterValidator(_hhmm)]
GatewayId = Annotated[str, AfterValidator(_gw_id)]
UnitName = Annotated[str, AfterValidator(_unit)]
"""`{bus}.{unit_id}` as in the MQTT topics, e.g. `rs485-1.3`."""
StationId = Annotated[str, Field(pattern=STATION_ID_RE)]


class _Model(BaseModel):
    """Strict, as JSON arrives (`false` is no latitude); the CSV import, whose cells are all
    text, validates with `strict=False`."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, strict=True)


class StationSpec(_Model):
    """A shelter with chargers. Opening hours are local time; none at all = around the clock.

    `closes_at` earlier than `opens_at` means open overnight (18:00 to 08:00). Slots must
    divide the day, so every station's windows start on the same grid from midnight.
    """

    id: StationId
    name_ja: Text = Field(min_length=1, max_length=200)
    name_en: Text = Field(min_length=1, max_length=200)
    name_kana: Text = Field(default="", max_length=200)
    """The name's reading (名称_カナ, as published): residents may type it to find it."""
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    address: Text = Field(default="", max_length=300)
    municipality: Text = Field(default="", max_length=100)
    counterpart_group: Text | None = Field(default=None, max_length=100)
    opens_at: TimeOfDay = None
    closes_at: TimeOfDay = Field(default=None, validate_default=True)
    slot_minutes: int = Field(default=30, ge=5, le=240)

    @field_validator("closes_at")
    @classmethod
    def _check_hours(cls, closes_at: str | None, info: ValidationInfo) -> str | None:
        opens_at = info.data.get("opens_at")
        if "opens_at" in info.data and (opens_at is None) != (closes_at is None):
            raise ValueError("opens_at and closes_at go together (both empty: always open)")
        if closes_at is not None and opens_at == closes_at:
            raise ValueError("equals opens_at; leave both empty for always open")
        return closes_at

    @field_validator("slot_minutes")
    @classmethod
    def _check_slot(cls, slot_minutes: int) -> int:
        if MINUTES_PER_DAY % slot_minutes:
            raise ValueError(f"{slot_minutes} does not divide a day (1440 minutes)")
        return slot_minutes


class StationPatch(_Model):
    """A partial update: only the fields given change (the id never does)."""

    name_ja: Text | None = Field(default=None, min_length=1, max_length=200)
    name_en: Text | None = Field(default=None, min_length=1, max_length=200)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    address: Text | None = Field(default=None, max_length=300)
    municipality: Text | None = Field(default=None, max_length=100)
    counterpart_group: Text | None = Field(default=None, max_length=100)
    opens_at: TimeOfDay = None
    closes_at: TimeOfDay = None
    slot_minutes: int | None = Field(default=None, ge=5, le=240)


class BatteryMapping(_Model):
    """Battery (gateway, unit) stands at station `station_id`."""

    gw_id: GatewayId
    unit: UnitName
    station_id: StationId


class BatteryInfo(_Model):
    unit_pk: int
    gw_id: str
    unit: str
    station_id: str | None


class StationInfo(StationSpec):
    """A station as stored, with the batteries mapped to it."""

    batteries: tuple[BatteryInfo, ...] = ()
