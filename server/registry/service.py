"""The registry's shell: stations and battery mappings in the database, each change audited.

Validation lives in `models` and CSV parsing in `csv_import`; this module only reads and
writes rows. Imports are all-or-nothing: a file with any bad row changes nothing, so a
half-applied registry (stations without their batteries) can never be live. Writing the
same file again changes nothing and records nothing, which makes the demo load idempotent.
Each change is made by an operator and checked against their reach in the transaction
that reads the rows it changes: a municipality's file naming another's station changes
nothing (Forbidden).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.access.operators import Operator
from server.access.places import station_municipality
from server.db.models import ACTIVE_BOOKING, Booking, Station, Unit
from server.db.session import Database
from server.errors import Conflict, Invalid, NotFound
from server.registry.csv_import import (
    ParsedCsv,
    RowError,
    parse_batteries_csv,
    parse_stations_csv,
)
from server.registry.models import (
    BatteryInfo,
    BatteryMapping,
    StationInfo,
    StationPatch,
    StationSpec,
)
from server.registry.shelter_formats import ShelterFormat, parse_shelters, published_over

Clock = Callable[[], datetime]
STATION_FIELDS = tuple(StationSpec.model_fields)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did, or (with `errors`) why it did nothing."""

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    errors: tuple[RowError, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.errors


class Registry:
    """Stations and which battery stands where; made once in the app lifespan."""

    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def create_station(self, spec: StationSpec, by: Operator) -> StationInfo:
        async with self._db.transaction() as session:
            if await session.get(Station, spec.id) is not None:
                raise Conflict(f"station {spec.id} exists", code="station_exists")
            await self._write_station(session, spec, None, by)
        return await self.get_station(spec.id)

    async def update_station(
        self, station_id: str, patch: StationPatch, by: Operator
    ) -> StationInfo:
        async with self._db.transaction() as session:
            row = await _station_row(session, station_id)
            merged = {**_spec_of(row).model_dump(), **patch.model_dump(exclude_unset=True)}
            try:
                spec = StationSpec.model_validate(merged)
            except ValueError as exc:
                raise Invalid(str(exc)) from exc
            await self._write_station(session, spec, row, by)
        return await self.get_station(station_id)

    async def get_station(self, station_id: str) -> StationInfo:
        async with self._db.transaction() as session:
            row = await _station_row(session, station_id)
            units = await session.scalars(
                select(Unit).where(Unit.station_id == station_id).order_by(Unit.gw_id, Unit.unit)
            )
            return _info_of(row, [_battery_of(unit) for unit in units])

    async def list_stations(
        self, municipality: str | None = None, counterpart_group: str | None = None
    ) -> list[StationInfo]:
        query = select(Station).order_by(Station.id)
        if municipality is not None:
            query = query.where(Station.municipality == municipality)
        if counterpart_group is not None:
            query = query.where(Station.counterpart_group == counterpart_group)
        async with self._db.transaction() as session:
            stations = list(await session.scalars(query))
            units = await session.scalars(
                select(Unit)
                .where(Unit.station_id.in_([s.id for s in stations]))
                .order_by(Unit.gw_id, Unit.unit)
            )
            by_station: dict[str, list[BatteryInfo]] = {}
            for unit in units:
                by_station.setdefault(unit.station_id or "", []).append(_battery_of(unit))
            return [_info_of(row, by_station.get(row.id, [])) for row in stations]

    async def list_batteries(self, station_id: str | None = None) -> list[BatteryInfo]:
        """Every known battery (mapped or only reported), or those of one station."""
        query = select(Unit).order_by(Unit.gw_id, Unit.unit)
        if station_id is not None:
            query = query.where(Unit.station_id == station_id)
        async with self._db.transaction() as session:
            return [_battery_of(unit) for unit in await session.scalars(query)]

    async def map_battery(self, mapping: BatteryMapping, by: Operator) -> BatteryInfo:
        """Place a battery at a station, creating its unit before the gateway reports it.

        Moving a battery with active bookings is refused: those residents were promised a
        port on it at its old station. Cancel or move the bookings first.
        """
        for attempt in range(2):  # ingest may create the same unit concurrently
            try:
                async with self._db.transaction() as session:
                    await _station_row(session, mapping.station_id)
                    return await self._map(session, mapping, by)
            except IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def unmap_battery(self, gw_id: str, unit: str, by: Operator) -> BatteryInfo:
        """Take a battery off its station; its unit (and live state) stays known."""
        async with self._db.transaction() as session:
            row = await session.scalar(select(Unit).where(Unit.gw_id == gw_id, Unit.unit == unit))
            if row is None:
                raise NotFound(f"battery {gw_id}/{unit} is unknown")
            if row.station_id is not None:
                by.require_reach(await station_municipality(session, row.station_id),
                                 f"battery {gw_id}/{unit}")  # fmt: skip
                await _refuse_if_booked(session, row)
                await audit.record(
                    session, by.name, "battery.unmapped", f"battery:{gw_id}/{unit}",
                    {"station_id": row.station_id}, at=self._clock(),
                )  # fmt: skip
                row.station_id = None
            return _battery_of(row)

    async def import_stations_csv(self, text: str, by: Operator) -> ImportReport:
        """Create or update every station of the file, or none of them (see module doc)."""
        return await self._import_stations(parse_stations_csv(text), by)

    async def import_shelters(self, data: bytes, fmt: ShelterFormat, by: Operator) -> ImportReport:
        """A municipality's published shelter file, all rows or none, as `import_stations_csv`."""
        return await self._import_stations(parse_shelters(data, fmt), by, over=published_over)

    async def _import_stations(
        self,
        parsed: ParsedCsv[StationSpec],
        by: Operator,
        over: Callable[[StationSpec, StationSpec], StationSpec] | None = None,
    ) -> ImportReport:
        """`over(stored, given)` is what a row makes of a station that exists; without it,
        the row replaces it whole."""
        if parsed.errors:
            return ImportReport(errors=parsed.errors)
        created: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        async with self._db.transaction() as session:
            for parsed_row in parsed.rows:
                spec = parsed_row.model
                row = await session.get(Station, spec.id)
                if row is not None and over is not None:
                    spec = over(_spec_of(row), spec)
                if row is not None and _spec_of(row) == spec:
                    unchanged.append(spec.id)
                    continue
                (created if row is None else updated).append(spec.id)
                await self._write_station(session, spec, row, by)
        return ImportReport(tuple(created), tuple(updated), tuple(unchanged))

    async def import_batteries_csv(self, text: str, by: Operator) -> ImportReport:
        """Map every battery of the file, or none; an unknown station is a row error."""
        parsed = parse_batteries_csv(text)
        if parsed.errors:
            return ImportReport(errors=parsed.errors)
        names = [f"{r.model.gw_id}/{r.model.unit}" for r in parsed.rows]
        async with self._db.transaction() as session:
            wanted = {r.model.station_id for r in parsed.rows}
            known = set(await session.scalars(select(Station.id).where(Station.id.in_(wanted))))
            errors = tuple(
                RowError(r.row, "station_id", f"no station {r.model.station_id!r}")
                for r in parsed.rows
                if r.model.station_id not in known
            )
            if errors:
                return ImportReport(errors=errors)
            created: list[str] = []
            updated: list[str] = []
            unchanged: list[str] = []
            for name, parsed_row in zip(names, parsed.rows, strict=True):
                before = await _unit_row(session, parsed_row.model.gw_id, parsed_row.model.unit)
                if before is not None and before.station_id == parsed_row.model.station_id:
                    unchanged.append(name)
                    continue
                (created if before is None else updated).append(name)
                await self._map(session, parsed_row.model, by)
        return ImportReport(tuple(created), tuple(updated), tuple(unchanged))

    async def _write_station(
        self, session: AsyncSession, spec: StationSpec, row: Station | None, by: Operator
    ) -> None:
        """Forbidden, and the whole transaction with it, unless `by` reaches the station's
        municipality before and after."""
        what = f"station {spec.id}"
        if row is not None:
            by.require_reach(row.municipality, what)
        by.require_reach(spec.municipality, what)
        values = spec.model_dump()
        if row is None:
            session.add(Station(**values))
            action, detail = "station.created", values
        else:
            before = _spec_of(row).model_dump()
            detail = {k: [before[k], v] for k, v in values.items() if before[k] != v}
            for name, value in values.items():
                setattr(row, name, value)
            action = "station.updated"
        await audit.record(session, by.name, action, f"station:{spec.id}", detail, at=self._clock())

    async def _map(
        self, session: AsyncSession, mapping: BatteryMapping, by: Operator
    ) -> BatteryInfo:
        """Forbidden unless `by` reaches the battery's station and the one it goes to."""
        what = f"battery {mapping.gw_id}/{mapping.unit}"
        by.require_reach(await station_municipality(session, mapping.station_id), what)
        row = await _unit_row(session, mapping.gw_id, mapping.unit)
        if row is not None and row.station_id not in (None, mapping.station_id):
            by.require_reach(await station_municipality(session, row.station_id), what)
        if row is None:
            row = Unit(gw_id=mapping.gw_id, unit=mapping.unit, station_id=mapping.station_id)
            session.add(row)
            await session.flush()
            before = None
        elif row.station_id == mapping.station_id:
            return _battery_of(row)
        else:
            await _refuse_if_booked(session, row)
            before, row.station_id = row.station_id, mapping.station_id
        detail: dict[str, Any] = {"station_id": mapping.station_id, "from_station_id": before}
        subject = f"battery:{mapping.gw_id}/{mapping.unit}"
        await audit.record(session, by.name, "battery.mapped", subject, detail, at=self._clock())
        return _battery_of(row)


async def _station_row(session: AsyncSession, station_id: str) -> Station:
    row = await session.get(Station, station_id)
    if row is None:
        raise NotFound(f"station {station_id} is unknown")
    return row


async def _unit_row(session: AsyncSession, gw_id: str, unit: str) -> Unit | None:
    return await session.scalar(select(Unit).where(Unit.gw_id == gw_id, Unit.unit == unit))


async def _refuse_if_booked(session: AsyncSession, unit: Unit) -> None:
    active = await session.scalar(
        select(func.count()).select_from(Booking).where(Booking.unit_pk == unit.id, ACTIVE_BOOKING)
    )
    if active:
        raise Conflict(
            f"battery {unit.gw_id}/{unit.unit} has {active} active bookings at {unit.station_id}",
            code="battery_has_bookings",
        )


def _spec_of(row: Station) -> StationSpec:
    """Rows are read as stored (not re-validated): a row written by older rules still reads."""
    return StationSpec.model_construct(**{name: getattr(row, name) for name in STATION_FIELDS})


def _info_of(row: Station, batteries: Sequence[BatteryInfo]) -> StationInfo:
    values = {name: getattr(row, name) for name in STATION_FIELDS}
    return StationInfo.model_construct(**values, batteries=tuple(batteries))


def _battery_of(unit: Unit) -> BatteryInfo:
    return BatteryInfo(
        unit_pk=unit.id, gw_id=unit.gw_id, unit=unit.unit, station_id=unit.station_id
    )
