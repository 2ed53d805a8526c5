"""A small seeded world for the booking shell tests: stations, batteries, ports, a clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from server.booking.service import BookingService
from server.db.migrate import upgrade
from server.db.models import Booking, CommandRow, Gateway, Port, Station, Unit, WindowLoad
from server.db.session import Database
from server.settings import Settings

T0 = datetime(2026, 11, 24, 0, 5, tzinfo=UTC)
"""09:05 in Japan; windows start on the half hour."""
W1 = datetime(2026, 11, 24, 0, 30, tzinfo=UTC)
W2 = W1 + timedelta(minutes=30)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class StationSpec:
    id: str
    lat: float
    lon: float
    ports: int = 4
    soc_pct: float = 100.0
    rated_wh: float = 1000.0
    opens_at: str | None = None
    closes_at: str | None = None
    municipality: str = ""


async def seed(db: Database, specs: list[StationSpec], now: datetime = T0) -> dict[str, int]:
    """One gateway per station, one battery each; returns the unit pk per station."""
    units: dict[str, int] = {}
    async with db.transaction() as session:
        for spec in specs:
            session.add(Station(id=spec.id, name_ja=spec.id, name_en=spec.id, latitude=spec.lat,
                                longitude=spec.lon, opens_at=spec.opens_at,
                                closes_at=spec.closes_at, slot_minutes=30,
                                municipality=spec.municipality))  # fmt: skip
            session.add(Gateway(gw_id=f"gw-{spec.id}", state="online", last_seen_at=now))
            unit = Unit(gw_id=f"gw-{spec.id}", unit="rs485-1.1", station_id=spec.id, online=True,
                        received_at=now, soc_pct=spec.soc_pct, rated_wh=spec.rated_wh)  # fmt: skip
            session.add(unit)
            await session.flush()
            units[spec.id] = unit.id
            for n in range(1, spec.ports + 1):
                session.add(Port(unit_pk=unit.id, port=n, status="available"))
    return units


def settings(url: str, move_grace_s: float = 0.0, offline_move_after_s: float = 7200.0) -> Settings:
    """Moves at once unless a test is about the grace (or about losing sight of a station)."""
    return Settings(database_url=url, mqtt_url=None, report_period_s=3600.0,
                    move_grace_s=move_grace_s,
                    offline_move_after_s=offline_move_after_s)  # fmt: skip


async def open_world(
    url: str,
    specs: list[StationSpec],
    clock: Clock,
    move_grace_s: float = 0.0,
    offline_move_after_s: float = 7200.0,
) -> tuple[Database, BookingService, dict[str, int]]:
    upgrade(url)
    db = Database(url)
    units = await seed(db, specs, clock())
    chosen = settings(url, move_grace_s, offline_move_after_s)
    return db, BookingService(db, chosen, clock), units


async def set_gateway(db: Database, station_id: str, state: str) -> None:
    """The station's gateway goes `offline` (its Last Will) or comes back `online`."""
    async with db.transaction() as session:
        await session.execute(
            update(Gateway).where(Gateway.gw_id == f"gw-{station_id}").values(state=state)
        )


async def set_port(db: Database, unit_pk: int, port: int, status: str) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(Port).where(Port.unit_pk == unit_pk, Port.port == port).values(status=status)
        )


async def active_bookings(db: Database) -> list[Booking]:
    async with db.transaction() as session:
        return list(await session.scalars(
            select(Booking).where(Booking.status.in_(("active", "checked_in")))
        ))  # fmt: skip


async def load(db: Database, station_id: str, window: datetime) -> int:
    async with db.transaction() as session:
        found = await session.scalar(select(WindowLoad.booked).where(
            WindowLoad.station_id == station_id, WindowLoad.window_start == window))  # fmt: skip
        return found or 0


async def displays(db: Database) -> list[tuple[int | None, str | None]]:
    async with db.transaction() as session:
        rows = await session.execute(
            select(CommandRow.port, CommandRow.value)
            .where(CommandRow.action == "set_display")
            .order_by(CommandRow.created_at, CommandRow.cmd_id)
        )
        return [(p, v) for p, v in rows]


async def count(db: Database, model: type[object]) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)
