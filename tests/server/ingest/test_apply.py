"""Applying batches on both stores: idempotence, newest-by-seq, gaps, events, results."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from server.db.models import CommandRow, Gateway, Port, SeenMessage, SeqGap, Unit, UnitEventRow
from server.db.session import Database
from server.ingest.apply import apply_batch
from server.ingest.changeset import ChangeSet
from server.ingest.receipts import Settled
from server.ingest.router import IngestCounters
from server.ingest.routes import MQTT_ROUTES
from server.ingest.staleness import mark_stale
from tests.server.database import with_database
from tests.server.ingest.messages import PREFIX, TS, Wire, event, result, state, status

T0 = TS  # received as measured
GW = "gw-1"
UNIT = "rs485-1.1"


class Ingest:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.counters = IngestCounters()
        self.clock = T0

    async def apply(self, *wires: Wire, settled: list[Settled] | None = None) -> ChangeSet:
        self.clock += timedelta(seconds=1)
        routed = [
            MQTT_ROUTES.route(PREFIX, t, p, self.clock, self.counters, defer=True) for t, p in wires
        ]  # fmt: skip  (deferred, as the link routes)
        return await apply_batch(
            self.db, [m for m in routed if m is not None], self.counters, owner="test",
            settled=settled,
        )  # fmt: skip

    async def gaps(self) -> list[tuple[int, int]]:
        async with self.db.transaction() as session:
            rows = await session.scalars(select(SeqGap).order_by(SeqGap.first_missing))
            return [(g.first_missing, g.last_missing) for g in rows]

    async def ports(self) -> dict[int, Port]:
        async with self.db.transaction() as session:
            return {p.port: p for p in await session.scalars(select(Port))}

    async def one(self, model: type[Any]) -> Any:
        async with self.db.transaction() as session:
            return (await session.scalars(select(model))).one()

    async def one_where(self, model: type[Any], condition: Any) -> Any:
        async with self.db.transaction() as session:
            return (await session.scalars(select(model).where(condition))).one()

    async def count(self, model: type[Any]) -> int:
        async with self.db.transaction() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def run(database_url: str, scenario: Callable[[Ingest], Awaitable[None]]) -> None:
    with_database(database_url, lambda db: scenario(Ingest(db)))


def test_first_state_creates_rows_and_reports_every_port(database_url: str) -> None:
    async def scenario(ingest: Ingest) -> None:
        changes = await ingest.apply(status(GW, 1, units=(UNIT,)), state(GW, UNIT, 3))
        unit = await ingest.one(Unit)
        assert (unit.gw_id, unit.unit, unit.state_seq, unit.online) == (GW, UNIT, 3, True)
        assert unit.station_id is None
        assert unit.received_at == ingest.clock
        ports = await ingest.ports()
        assert [ports[n].status for n in (1, 2)] == ["available", "available"]
        assert [(c.port, c.before_status, c.after_status) for c in changes.ports] == [
            (1, None, "available"), (2, None, "available")]  # fmt: skip
        assert [(g.gw_id, g.state) for g in changes.gateways] == [(GW, "online")]
        assert [u.unit for u in changes.units] == [UNIT]
        gateway = await ingest.one(Gateway)
        assert (gateway.state, gateway.max_seq, gateway.last_seen_at) == ("online", 3, ingest.clock)
        assert await ingest.count(SeqGap) == 0  # seq 2 is the will's reserved seq

    run(database_url, scenario)


def test_duplicates_and_replays_change_nothing(database_url: str) -> None:
    async def scenario(ingest: Ingest) -> None:
        await ingest.apply(status(GW, 1), state(GW, UNIT, 10, ("charging", "available"), True))
        before = await ingest.one(Unit)
        again = await ingest.apply(
            state(GW, UNIT, 10, ("charging", "available")),  # a duplicate
            state(GW, UNIT, 5, ("faulted", "faulted"), historical=True),  # an older replay
            state(GW, UNIT, 10, ("faulted", "faulted")),  # same seq, whatever it says
        )
        assert not again
        assert again == ChangeSet()
        after = await ingest.one(Unit)
        assert (after.state_seq, after.received_at) == (before.state_seq, before.received_at)
        ports = await ingest.ports()
        assert [ports[n].status for n in (1, 2)] == ["charging", "available"]
        assert ingest.counters.duplicates == 2
        assert ingest.counters.history == 1
        assert await ingest.count(SeenMessage) == 3  # 1, 10, 5

    run(database_url, scenario)


def test_a_gateway_whose_seq_started_again_is_followed_afresh(database_url: str) -> None:
    """A spare gateway (or a lost outbox) sends seqs the old one used: not duplicates."""

    async def scenario(ingest: Ingest) -> None:
        await ingest.apply(status(GW, 1, units=(UNIT,)), state(GW, UNIT, 3))
        restarted = await ingest.apply(
            state(GW, UNIT, 4, ("charging", "charging")),  # the old run's, before the birth
            status(GW, 0, units=(UNIT,), run="run-2"),
            state(GW, UNIT, 2, ("faulted", "available")),
        )
        assert ingest.counters.seq_restarts == 1
        ports = await ingest.ports()
        assert [ports[n].status for n in (1, 2)] == ["faulted", "available"]
        assert {c.port: c.after_status for c in restarted.ports} == {1: "faulted"}
        gateway = await ingest.one(Gateway)
        assert (gateway.state, gateway.seq_run, gateway.max_seq) == ("online", "run-2", 2)
        assert await ingest.count(SeqGap) == 0

        later = await ingest.apply(state(GW, UNIT, 3, ("available", "available")))
        assert {c.port: c.after_status for c in later.ports} == {1: "available"}
        duplicates = ingest.counters.duplicates
        assert not await ingest.apply(state(GW, UNIT, 3, ("faulted", "faulted")))
        assert ingest.counters.duplicates == duplicates + 1
        # the old run's Last Will (a session takeover) and a late copy of its birth
        assert not await ingest.apply(status(GW, 5, "offline"), status(GW, 1, units=(UNIT,)))
        assert (await ingest.one(Gateway)).state == "online"
        # the spare restarting with its outbox intact is an ordinary restart
        assert not await ingest.apply(status(GW, 4, units=(UNIT,), run="run-2"))
        assert ingest.counters.seq_restarts == 1
        assert (await ingest.one(Unit)).state_seq == 3

    run(database_url, scenario)


def test_a_first_birth_after_its_states_is_no_restart(database_url: str) -> None:
    """Retained messages come topic by topic: a gateway's states may precede its birth."""

    async def scenario(ingest: Ingest) -> None:
        await ingest.apply(state(GW, UNIT, 3, ("charging", "available")))
        await ingest.apply(status(GW, 0, units=(UNIT,)))
        assert ingest.counters.seq_restarts == 0
        gateway = await ingest.one(Gateway)
        assert (gateway.state, gateway.seq_run, gateway.max_seq) == ("online", "run-1", 3)
        assert (await ingest.one(Unit)).state_seq == 3

    run(database_url, scenario)


def test_newest_state_wins_whatever_the_order(database_url: str) -> None:
    async def scenario(ingest: Ingest) -> None:
        await ingest.apply(status(GW, 1))
        changes = await ingest.apply(
            state(GW, UNIT, 7, ("faulted", "available")),
            state(GW, UNIT, 6, ("charging", "charging")),
        )
        ports = await ingest.ports()
        assert [ports[n].status for n in (1, 2)] == ["faulted", "available"]
        assert (await ingest.one(Unit)).state_seq == 7
        assert {c.port: c.after_status for c in changes.ports} == {1: "faulted", 2: "available"}
        later = await ingest.apply(state(GW, UNIT, 8, ("available", "available")))
        assert [(c.port, c.before_status, c.after_status) for c in later.ports] == [
            (1, "faulted", "available")]  # fmt: skip
        ports = await ingest.ports()  # written back to existing rows, not only reported
        assert [ports[n].status for n in (1, 2)] == ["available", "available"]
        assert (await ingest.one(Unit)).state_seq == 8

    run(database_url, scenario)


def test_gaps_are_recorded_once_and_late_seqs_strike_them_off(database_url: str) -> None:
    async def scenario(ingest: Ingest) -> None:
        await ingest.apply(status(GW, 1), state(GW, UNIT, 3))
        await ingest.apply(state(GW, UNIT, 9))
        assert await ingest.gaps() == [(4, 8)]
        await ingest.apply(state(GW, UNIT, 5, historical=True))  # a replay into the gap
        assert await ingest.gaps() == [(4, 4), (6, 8)]
        assert (await ingest.one(Gateway)).max_seq == 9
        await ingest.apply(*(state(GW, UNIT, s, historical=True) for s in (4, 6, 7, 8)))
        assert await ingest.gaps() == []

    run(database_url, scenario)


def test_seqs_another_server_stored_are_no_gap(database_url: str) -> None:
    """Two processes sharing the stream: what the other one committed is not missing."""

    async def scenario(ingest: Ingest) -> None:
        await ingest.apply(status(GW, 1), state(GW, UNIT, 3))
        async with ingest.db.transaction() as session:  # the other process's share
            session.add_all(SeenMessage(gw_id=GW, seq=s, received_at=T0) for s in (5, 6, 7))
        await ingest.apply(state(GW, UNIT, 9))
        assert await ingest.gaps() == [(4, 4), (8, 8)]

    run(database_url, scenario)


def test_a_seq_far_ahead_of_its_gateway_never_becomes_the_state(database_url: str) -> None:
    """A counter bug or a stranger's message: refused, uncounted as seen; genuine ones apply."""

    async def scenario(ingest: Ingest) -> None:
        await ingest.apply(status(GW, 1), state(GW, UNIT, 3))
        forged = state(GW, UNIT, 100_003, statuses=("faulted", "faulted"))
        settled: list[Settled] = []
        await ingest.apply(forged, settled=settled)
        assert ingest.counters.implausible == 1 and settled == []
        assert {p.status for p in (await ingest.ports()).values()} == {"available"}
        assert (await ingest.one(Gateway)).max_seq == 3
        await ingest.apply(state(GW, UNIT, 4, statuses=("charging", "available")))
        assert (await ingest.ports())[1].status == "charging"
        assert await ingest.count(SeenMessage) == 3  # 1, 3, 4: never the forged seq
        # After a long silence a gateway may well have moved on that far: then it applies.
        ingest.clock += timedelta(seconds=1000)
        await ingest.apply(forged)
        assert (await ingest.ports())[1].status == "faulted"

    run(database_url, scenario)


def test_timestamps_no_gateway_measured_are_refused(database_url: str) -> None:
    async def scenario(ingest: Ingest) -> None:
        await ingest.apply(status(GW, 1), state(GW, UNIT, 3))
        far = [datetime(2999, 1, 1, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC)]
        await ingest.apply(*(state(GW, UNIT, 4 + i, statuses=("faulted", "faulted"), ts=ts)
                             for i, ts in enumerate(far)))  # fmt: skip
        assert ingest.counters.implausible == 2
        assert {p.status for p in (await ingest.ports()).values()} == {"available"}
        week_old = T0 - timedelta(days=7)  # a replay after a long outage is still believed
        await ingest.apply(state(GW, UNIT, 6, statuses=("faulted", "faulted"), ts=week_old))
        assert (await ingest.ports())[1].status == "faulted"

    run(database_url, scenario)


def test_what_a_batch_settles_is_its_claimed_seqs_per_run(database_url: str) -> None:
    async def scenario(ingest: Ingest) -> None:
        settled: list[Settled] = []
        await ingest.apply(status(GW, 1), state(GW, UNIT, 2), state(GW, UNIT, 3), settled=settled)
        await ingest.apply(state(GW, UNIT, 3), state(GW, UNIT, 4), settled=settled)  # 3 again
        assert settled == [Settled(GW, "run-1", (1, 2, 3)), Settled(GW, "run-1", (3, 4))]

    run(database_url, scenario)


def test_events_are_stored_once(database_url: str) -> None:
    async def scenario(ingest: Ingest) -> None:
        first = await ingest.apply(status(GW, 1), event(GW, UNIT, 3, "event-0001"))
        [record] = first.events
        assert (record.event_id, record.kind, record.port, record.error) == (
            "event-0001", "port_faulted", 2, "over_current")  # fmt: skip
        assert record.unit_pk is not None
        # the same event replayed under a new seq, and the same seq again
        again = await ingest.apply(event(GW, UNIT, 4, "event-0001"), event(GW, UNIT, 3, "x" * 8))
        assert again.events == ()
        row = await ingest.one(UnitEventRow)
        assert (row.seq, row.unit) == (3, UNIT)

    run(database_url, scenario)


def test_last_will_takes_every_port_offline_and_birth_brings_them_back(database_url: str) -> None:
    async def scenario(ingest: Ingest) -> None:
        await ingest.apply(status(GW, 1), state(GW, UNIT, 3), state(GW, "rs485-1.2", 4))
        will = await ingest.apply(status(GW, 2, "offline"))
        assert [(g.gw_id, g.state) for g in will.gateways] == [(GW, "offline")]
        assert {(c.unit, c.port, c.after_status) for c in will.ports} == {
            (u, p, "offline") for u in (UNIT, "rs485-1.2") for p in (1, 2)}  # fmt: skip
        assert all(not u.online for u in will.units)
        # an older online status (a delayed retained copy) does not revive it
        assert not await ingest.apply(status(GW, 1))
        birth = await ingest.apply(status(GW, 5), state(GW, UNIT, 7))
        assert {c.after_status for c in birth.ports} == {"available"}
        assert len(birth.ports) == 4

    run(database_url, scenario)


def test_unit_reported_offline_and_admin_disable(database_url: str) -> None:
    async def scenario(ingest: Ingest) -> None:
        await ingest.apply(status(GW, 1), state(GW, UNIT, 3))
        lost = await ingest.apply(state(GW, UNIT, 4, online=False))
        assert {c.after_status for c in lost.ports} == {"offline"}
        async with ingest.db.transaction() as session:
            port = (await session.scalars(select(Port).where(Port.port == 1))).one()
            port.admin_disabled = True
        found = await ingest.apply(state(GW, UNIT, 5))
        assert {c.port: c.after_status for c in found.ports} == {1: "unavailable", 2: "available"}

    run(database_url, scenario)


def test_command_results_update_the_command(database_url: str) -> None:
    async def scenario(ingest: Ingest) -> None:
        async with ingest.db.transaction() as session:
            session.add(CommandRow(cmd_id="cmd-1", gw_id=GW, unit=UNIT, action="set_display",
                                   port=1, value="K7Q2", created_at=T0))  # fmt: skip
        changes = await ingest.apply(result(GW, 3, "cmd-1", ok=False, error="port busy"),
                                     result(GW, 4, "unknown"))  # fmt: skip
        row = await ingest.one(CommandRow)
        assert (row.ok, row.error, row.answered_at) == (False, "port busy", ingest.clock)
        assert [(a.cmd_id, a.ok) for a in changes.commands] == [("cmd-1", False)]

    run(database_url, scenario)


def test_a_malformed_payload_is_counted_and_the_rest_applied(database_url: str) -> None:
    async def scenario(ingest: Ingest) -> None:
        topic, _ = state(GW, UNIT, 1)
        changes = await ingest.apply(
            status(GW, 1), (topic, b'{"seq": 2, "garbage": true}'), state(GW, UNIT, 3),
            (f"{PREFIX}/gw/{GW}/what", b"{}"),
        )  # fmt: skip
        assert ingest.counters.malformed == 1
        assert ingest.counters.unknown_topic == 1
        assert ingest.counters.applied == 2
        assert len(changes.ports) == 2
        assert await ingest.count(SeenMessage) == 2

    run(database_url, scenario)


def bad_body(wire: Wire) -> Wire:
    """`wire` with a valid envelope and an invalid rest (a port numbered 0)."""
    topic, payload = wire
    body = json.loads(payload)
    body["ports"][0]["port"] = 0
    return topic, json.dumps(body).encode()


def test_a_deferred_state_is_validated_whole_only_where_it_could_apply(
    database_url: str,
) -> None:
    async def scenario(ingest: Ingest) -> None:
        await ingest.apply(status(GW, 1))
        changes = await ingest.apply(
            state(GW, UNIT, 2, ("faulted", "available")),
            bad_body(state(GW, UNIT, 3)),  # superseded: not validated beyond its envelope
            state(GW, UNIT, 4, ("charging", "available")),  # the newest valid one: applied
            bad_body(state(GW, UNIT, 5)),  # the newest: validated, malformed, not applied
        )
        assert ingest.counters.malformed == 1
        assert (ingest.counters.applied, ingest.counters.superseded) == (4, 2)
        assert (await ingest.one(Unit)).state_seq == 4
        assert {c.port: c.after_status for c in changes.ports} == {1: "charging", 2: "available"}
        assert await ingest.count(SeenMessage) == 5  # every valid envelope is claimed
        assert await ingest.count(SeqGap) == 0
        again = await ingest.apply(bad_body(state(GW, UNIT, 5)), state(GW, UNIT, 6))
        assert ingest.counters.malformed == 1  # seq 5 is a duplicate now
        assert (await ingest.one(Unit)).state_seq == 6
        assert {c.port: c.after_status for c in again.ports} == {1: "available"}

    run(database_url, scenario)


def test_a_unit_whose_every_state_is_malformed_is_not_created(database_url: str) -> None:
    async def scenario(ingest: Ingest) -> None:
        await ingest.apply(status(GW, 1), bad_body(state(GW, UNIT, 2)),
                           bad_body(state(GW, UNIT, 3)))  # fmt: skip
        assert ingest.counters.malformed == 2
        assert await ingest.count(Unit) == 0
        assert await ingest.count(SeenMessage) == 3

    run(database_url, scenario)


def test_silence_marks_units_stale_and_gateways_silent_once(database_url: str) -> None:
    async def scenario(ingest: Ingest) -> None:
        await ingest.apply(status(GW, 1), state(GW, UNIT, 3))
        await ingest.apply(state(GW, "rs485-1.2", 4))
        last = ingest.clock
        assert not await mark_stale(ingest.db, last + timedelta(seconds=29), 10.0, owner="test")
        swept = await mark_stale(ingest.db, last + timedelta(seconds=31), 10.0, owner="test")
        assert [(g.gw_id, g.state) for g in swept.gateways] == [(GW, "offline")]
        assert {c.after_status for c in swept.ports} == {"offline"}
        assert len(swept.ports) == 4
        assert not await mark_stale(
            ingest.db, last + timedelta(seconds=60), 10.0, owner="test"
        )  # once
        back = await ingest.apply(state(GW, UNIT, 5))
        assert [(g.gw_id, g.state) for g in back.gateways] == [(GW, "online")]
        assert {(c.unit, c.after_status) for c in back.ports} == {(UNIT, "available")}
        unit = await ingest.one_where(Unit, Unit.unit == UNIT)
        assert not unit.stale

    run(database_url, scenario)
