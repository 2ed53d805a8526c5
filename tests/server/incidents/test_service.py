"""IncidentService against real SQLite and PostgreSQL: lifecycle, dedupe, debounce,
escalation, forecasts, and an audit entry for every transition."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from server import audit
from server.db.migrate import upgrade
from server.db.models import Booking, Incident, Station, Unit
from server.db.session import Database
from server.drills.service import DrillService, DrillSpec
from server.errors import Conflict, Invalid, NotFound
from server.incidents import IncidentService, IncidentView
from server.ingest.changeset import ChangeSet, GatewayChange
from server.settings import Settings
from tests.server.incidents.changes import (
    GW,
    STATION,
    T0,
    UNIT,
    event,
    fault,
    recover,
    unit_state,
)

SETTINGS = Settings(incident_debounce_s=60, escalate_after_min=15, energy_per_phone_wh=15)
S = timedelta(seconds=1)
MIN = timedelta(minutes=1)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def run(
    database_url: str, scenario: Callable[[IncidentService, Clock, Database], Awaitable[None]]
) -> None:
    upgrade(database_url)

    async def main() -> None:
        db = Database(database_url)
        clock = Clock(T0)
        try:
            await scenario(IncidentService(db, SETTINGS, clock), clock, db)
        finally:
            await db.dispose()

    asyncio.run(main())


async def history(db: Database, incident: IncidentView) -> list[tuple[str, str]]:
    async with db.transaction() as session:
        entries = await audit.entries(session, subject=f"incident:{incident.id}")
    return [(e.action.removeprefix("incident."), e.actor) for e in reversed(entries)]


def test_lifecycle_open_acknowledge_resolve_with_audit(database_url: str) -> None:
    async def scenario(service: IncidentService, clock: Clock, db: Database) -> None:
        await service.on_changes(fault())
        (opened,) = await service.list()
        assert (opened.kind, opened.state, opened.station_id, opened.port) == (
            "port_fault", "open", STATION, 3,
        )  # fmt: skip
        assert opened.dedupe_key == f"port_fault:{GW}/{UNIT}/3"
        clock.now = T0 + 2 * MIN
        acked = await service.acknowledge(opened.id, "crew:tanaka")
        assert (acked.state, acked.acknowledged_by, acked.acknowledged_at) == (
            "acknowledged", "crew:tanaka", T0 + 2 * MIN,
        )  # fmt: skip
        assert (
            await service.acknowledge(opened.id, "crew:suzuki")
        ).acknowledged_by == "crew:tanaka"
        resolved = await service.resolve(opened.id, "crew:tanaka")
        assert (resolved.state, resolved.resolved_by) == ("resolved", "crew:tanaka")
        assert (await service.resolve(opened.id, "crew:suzuki")).resolved_by == "crew:tanaka"
        with pytest.raises(Conflict) as late:
            await service.acknowledge(opened.id, "crew:suzuki")
        assert late.value.code == "incident_resolved"
        with pytest.raises(NotFound):
            await service.get(999)
        with pytest.raises(Invalid):
            await service.list(state="closed")
        assert [i.id for i in await service.list(state="resolved", station_id=STATION)] == [
            opened.id
        ]
        assert await service.list(state="open") == []
        assert await history(db, opened) == [
            ("opened", "system"), ("acknowledged", "crew:tanaka"), ("resolved", "crew:tanaka"),
        ]  # fmt: skip

    run(database_url, scenario)


def test_duplicates_are_one_incident_and_a_flapping_port_is_counted(database_url: str) -> None:
    async def scenario(service: IncidentService, clock: Clock, db: Database) -> None:
        await service.on_changes(fault(T0))
        await service.on_changes(fault(T0 + S))  # a second report of the same fault
        for second in (10, 20, 30, 40):  # flapping faster than the debounce period
            clock.now = T0 + second * S
            await service.on_changes(recover(clock.now))
            await service.tick()
            clock.now += 5 * S
            await service.on_changes(fault(clock.now))
        (flapping,) = await service.list()
        assert (flapping.state, flapping.occurrences) == ("open", 5)
        assert flapping.condition_active
        actions = [action for action, _ in await history(db, flapping)]
        assert actions == ["opened"] + ["condition_cleared", "recurred"] * 4

    run(database_url, scenario)


def test_a_recovery_resolves_only_after_staying_clear(database_url: str) -> None:
    async def scenario(service: IncidentService, clock: Clock, db: Database) -> None:
        await service.on_changes(fault(T0))
        clock.now = T0 + 10 * S
        await service.on_changes(recover(clock.now))
        await service.tick(T0 + 69 * S)
        (still,) = await service.list()
        assert still.state == "open" and still.condition_cleared_at == T0 + 10 * S
        await service.tick(T0 + 70 * S)
        resolved = await service.get(still.id)
        assert (resolved.state, resolved.resolved_by) == ("resolved", "system")
        clock.now = T0 + 2 * MIN
        await service.on_changes(fault(clock.now))  # a new fault after the quiet period
        new = [i for i in await service.list(state="open")]
        assert len(new) == 1 and new[0].id != still.id
        assert await history(db, still) == [
            ("opened", "system"), ("condition_cleared", "system"), ("resolved", "system"),
        ]  # fmt: skip

    run(database_url, scenario)


def test_unacknowledged_incidents_escalate_once(database_url: str) -> None:
    async def scenario(service: IncidentService, clock: Clock, db: Database) -> None:
        await service.on_changes(event("alarm_raised", alarm="over_temp_alarm"))
        await service.on_changes(unit_state(soc_pct=10.0, alarms=("over_temp_alarm",)))
        alarm, low = sorted(await service.list(), key=lambda i: i.kind)
        assert (alarm.kind, alarm.severity, low.kind) == (
            "battery_alarm",
            "critical",
            "low_battery",
        )
        await service.acknowledge(low.id, "crew:tanaka")
        await service.tick(T0 + 14 * MIN)
        assert (await service.get(alarm.id)).escalated_at is None
        await service.tick(T0 + 15 * MIN)
        await service.tick(T0 + 30 * MIN)
        assert (await service.get(alarm.id)).escalated_at == T0 + 15 * MIN
        assert (await service.get(low.id)).escalated_at is None
        assert [a for a, _ in await history(db, alarm)] == ["opened", "escalated"]

    run(database_url, scenario)


def test_a_person_resolving_a_low_battery_is_not_reopened_by_the_next_report(
    database_url: str,
) -> None:
    async def scenario(service: IncidentService, clock: Clock, db: Database) -> None:
        await service.on_changes(unit_state(soc_pct=12.0))
        (low,) = await service.list()
        await service.resolve(low.id, "crew:tanaka")  # "swapping it now"
        await service.on_changes(unit_state(soc_pct=11.0))
        assert await service.list(state="open") == []
        await service.on_changes(unit_state(soc_pct=95.0))  # swapped
        await service.on_changes(unit_state(soc_pct=9.0))  # and low again, later
        assert len(await service.list(state="open")) == 1

    run(database_url, scenario)


def test_two_services_opening_the_same_incident_at_once_make_one(database_url: str) -> None:
    async def scenario(service: IncidentService, clock: Clock, db: Database) -> None:
        other = IncidentService(Database(db.url), SETTINGS, clock)
        try:
            await asyncio.gather(*(s.on_changes(fault()) for s in (service, other) * 3))
        finally:
            await other._db.dispose()
        (one,) = await service.list()
        assert one.occurrences == 1

    run(database_url, scenario)


def test_two_servers_ticking_at_once_escalate_an_incident_once(database_url: str) -> None:
    """Processes sharing the database tick at the same moment (15 s timers started together):
    each reads the unacknowledged incident, but one escalation is written, and HQ paged
    once. The rows are locked in id order, so the second reads the first's escalation."""

    async def scenario(service: IncidentService, clock: Clock, db: Database) -> None:
        await service.on_changes(event("alarm_raised", alarm="over_temp_alarm"))
        (alarm,) = await service.list()
        others = [IncidentService(Database(db.url), SETTINGS, clock) for _ in range(7)]
        try:
            await asyncio.gather(*(o.list() for o in others))  # connected: the ticks overlap
            at = T0 + 15 * MIN
            await asyncio.gather(*(s.tick(at) for s in (service, *others)))
        finally:
            for other in others:
                await other._db.dispose()
        assert [a for a, _ in await history(db, alarm)] == ["opened", "escalated"]

    run(database_url, scenario)


async def _battery_with_bookings(db: Database, soc_pct: float, phones_per_window: int) -> None:
    """ozu-01 with one 2,000 Wh battery and bookings on its 8 ports for the next 4 hours."""
    async with db.transaction() as session:
        session.add(Station(id=STATION, name_ja="大洲小学校", name_en="Ozu Elementary School",
                            latitude=33.5068, longitude=132.5431, slot_minutes=30))  # fmt: skip
        unit = Unit(gw_id=GW, unit=UNIT, station_id=STATION, online=True, soc_pct=soc_pct,
                    rated_wh=2000.0, power_w=-20.0)  # fmt: skip
        session.add(unit)
        await session.flush()
        for window in range(8):
            start = T0 + window * 30 * MIN
            for port in range(1, phones_per_window + 1):
                session.add(Booking(id=f"b{window}-{port}", resident_id=f"r{window}-{port}",
                                    station_id=STATION, window_start=start, unit_pk=unit.id,
                                    port=port, ticket_code="K7Q2", created_at=T0,
                                    updated_at=T0))  # fmt: skip


def test_a_forecast_is_raised_when_the_booked_load_drains_the_battery(database_url: str) -> None:
    async def scenario(service: IncidentService, clock: Clock, db: Database) -> None:
        # 8 phones x 15 Wh every 30 min = 240 W; 10 % of 2,000 Wh lasts 50 minutes.
        await _battery_with_bookings(db, soc_pct=10.0, phones_per_window=8)
        await service.tick(T0)
        (forecast,) = await service.list()
        assert (forecast.kind, forecast.station_id, forecast.severity) == (
            "depletion_forecast", STATION, "critical",
        )  # fmt: skip
        assert forecast.dedupe_key == f"depletion_forecast:{GW}/{UNIT}"
        assert "run out by 18:50" in forecast.detail  # 09:50 UTC in Japan
        await service.tick(T0 + S)
        assert [i.id for i in await service.list()] == [forecast.id]  # one, not one per tick

        async with db.transaction() as session:  # bookings cancelled: the battery lasts
            for booking in await session.scalars(select(Booking)):
                booking.status = "cancelled"
        await service.tick(T0 + MIN)
        assert (await service.get(forecast.id)).condition_cleared_at == T0 + MIN
        await service.tick(T0 + 2 * MIN)
        assert (await service.get(forecast.id)).state == "resolved"

    run(database_url, scenario)


def test_no_forecast_when_the_battery_lasts_the_bookings(database_url: str) -> None:
    async def scenario(service: IncidentService, clock: Clock, db: Database) -> None:
        # 8 x 15 Wh x 8 windows = 960 Wh booked; 90 % of 2,000 Wh is plenty.
        await _battery_with_bookings(db, soc_pct=90.0, phones_per_window=8)
        await service.tick(T0)
        assert await service.list() == []
        async with db.transaction() as session:
            assert (await session.scalars(select(Incident))).first() is None

    run(database_url, scenario)


def test_a_drills_incidents_are_marked_and_an_ended_drills_gateway_opens_none(
    database_url: str,
) -> None:
    """What a drill's twin or gateway raises is the drill's (`drill_id`); once the drill has
    ended, its gateway going away (the drill's simulator stopped) is no one's incident."""

    async def scenario(service: IncidentService, clock: Clock, db: Database) -> None:
        async with db.transaction() as session:
            session.add(Station(id=STATION, name_ja="避難所", name_en="Shelter", latitude=33.5,
                                longitude=132.5, municipality="大洲市"))  # fmt: skip
            await session.flush()
            drills = DrillService(db, clock)
        spec = DrillSpec("訓練", "quiet", ["大洲市"], ["line-1.1"])
        drill = await drills.start(spec, "hq")
        [twin] = drill.stations
        moved = [dataclasses.replace(e, station_id=twin, gw_id=drill.gw_id) for e in fault().events]
        twin_fault = dataclasses.replace(fault(), events=tuple(moved))
        await service.on_changes(twin_fault)
        await service.on_changes(fault())
        opened = {i.station_id: i for i in await service.list()}
        assert (opened[twin].drill_id, opened[STATION].drill_id) == (drill.id, None)
        await drills.end(drill.id, "hq")
        await service.on_changes(ChangeSet(gateways=(GatewayChange(drill.gw_id, "offline", T0),)))
        clock.now = T0 + 5 * MIN
        await service.tick()
        left = await service.list()
        assert [i.kind for i in left if i.gw_id == drill.gw_id and i.kind != "port_fault"] == []
        assert {i.id: i.resolved_by for i in left}[opened[twin].id] == "drill_end"

    run(database_url, scenario)
