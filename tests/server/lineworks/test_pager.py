"""The pager in the app: incident transitions become outbox rows to the right channels, in
their transaction, with blips waited out, escalation to HQ, recovery and notices."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from server import audit
from server.db.models import Incident, Notification, OutboxMessage
from server.incidents.service import IncidentService
from server.ingest.changeset import ChangeSet, GatewayChange
from server.lineworks.buttons import decode
from server.lineworks.pager import Pager
from tests.server.incidents.changes import GW, T0, fault, recover
from tests.server.lineworks.conftest import ADMIN, Clock, outbox

pytestmark = pytest.mark.anyio

S = timedelta(seconds=1)
MIN = timedelta(minutes=1)
CHANNELS = ["channel:ch-ozu", "channel:ch-nanyo", "channel:ch-hq"]


def gateway(state: str, at: object) -> ChangeSet:
    return ChangeSet(gateways=(GatewayChange(GW, state, at),))  # type: ignore[arg-type]


def together(*changes: ChangeSet) -> ChangeSet:
    """Several ingest events in one batch."""
    events = tuple(e for c in changes for e in c.events)
    return ChangeSet(
        events=events, station_ids=frozenset().union(*(c.station_ids for c in changes))
    )


async def incidents(app: FastAPI) -> list[Incident]:
    async with app.state.services.db.transaction() as session:
        return list((await session.scalars(select(Incident).order_by(Incident.id))).all())


async def actions_of(app: FastAPI, incident_id: int) -> list[str]:
    async with app.state.services.db.transaction() as session:
        entries = await audit.entries(session, subject=f"incident:{incident_id}")
    return [e.action for e in reversed(entries)]


async def test_a_port_fault_is_paged_at_once_to_three_channels(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await app.state.services.incidents.on_changes(fault(T0))
    [incident] = await incidents(app)
    sent = await outbox(app)
    assert [s.target for s in sent] == CHANNELS
    assert all(s.content == sent[0].content for s in sent)
    content = sent[0].content
    assert content["type"] == "button_template"
    assert "大洲市立大洲小学校" in content["contentText"]
    assert "Ozu Elementary School" in content["contentText"]
    assert "battery 2 (rs485-1.2) port 3" in content["contentText"]
    assert "11/24 18:00" in content["contentText"]
    assert [a["postback"] for a in content["actions"]] == [
        f"ack:{incident.id}", f"resolve:{incident.id}",
    ]  # fmt: skip
    assert sent[0].source == f"incident:{incident.id}:paged"
    assert incident.paged_at == T0
    assert await actions_of(app, incident.id) == ["incident.opened", "incident.paged"]


async def test_faults_of_one_station_together_are_one_message_per_channel(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await app.state.services.incidents.on_changes(together(*(fault(T0, port=p) for p in (1, 2, 3))))
    ids = [i.id for i in await incidents(app)]
    sent = await outbox(app)
    assert [s.target for s in sent] == CHANNELS
    assert "障害 3件" in sent[0].text
    presses = [decode(a["postback"]) for a in sent[0].content["actions"]]
    assert [p.incident_ids for p in presses if p] == [(i,) for i in ids for _ in (1, 2)]


async def test_many_faults_of_a_station_get_acknowledge_all(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await app.state.services.incidents.on_changes(
        together(*(fault(T0, port=p) for p in range(1, 7)))
    )
    ids = tuple(i.id for i in await incidents(app))
    sent = await outbox(app)
    assert len(sent) == 3
    assert [a["label"] for a in sent[0].content["actions"]] == [
        "全て対応 Ack all", "全て解決 Resolve all",
    ]  # fmt: skip
    press = decode(sent[0].content["actions"][0]["postback"])
    assert press is not None and press.incident_ids == ids


async def test_a_gateway_offline_that_clears_within_the_delay_is_never_paged(
    app: FastAPI, client: httpx.AsyncClient, clock: Clock
) -> None:
    svc = app.state.services
    await svc.incidents.on_changes(gateway("offline", T0))
    assert await outbox(app) == []
    clock.now = T0 + 100 * S  # back before the 120 s delay ...
    await svc.incidents.on_changes(gateway("online", clock.now))
    clock.now = T0 + 125 * S  # ... so at the delay it has not lasted: no page
    assert await svc.pager.tick(clock.now) == 0
    clock.now = T0 + 170 * S  # resolved by itself after the 60 s debounce
    await svc.incidents.tick(clock.now)
    assert await svc.pager.tick(clock.now) == 0
    [incident] = await incidents(app)
    assert (incident.kind, incident.state, incident.paged_at) == (
        "gateway_offline",
        "resolved",
        None,
    )
    assert await outbox(app) == []  # no page, and no recovery of what nobody heard of
    assert "incident.paged" not in await actions_of(app, incident.id)


async def test_a_gateway_offline_that_lasts_is_paged_once(
    app: FastAPI, client: httpx.AsyncClient, clock: Clock
) -> None:
    svc = app.state.services
    await svc.incidents.on_changes(gateway("offline", T0))
    clock.now = T0 + 119 * S
    assert await svc.pager.tick(clock.now) == 0
    clock.now = T0 + 120 * S
    assert await svc.pager.tick(clock.now) == 3
    clock.now = T0 + 135 * S
    assert await svc.pager.tick(clock.now) == 0
    sent = await outbox(app)
    assert [s.target for s in sent] == CHANNELS
    assert "ゲートウェイ切断 / gateway offline" in sent[0].text
    assert "大洲市立大洲小学校、大洲市総合体育館" in sent[0].text  # the stations demo-gw serves
    [incident] = await incidents(app)
    assert incident.paged_at == T0 + 120 * S


async def test_escalation_to_hq_after_escalate_after_min_unacknowledged(
    app: FastAPI, client: httpx.AsyncClient, clock: Clock
) -> None:
    svc = app.state.services
    await svc.incidents.on_changes(fault(T0))
    paged = len(await outbox(app))
    clock.now = T0 + 14 * MIN
    await svc.incidents.tick(clock.now)
    assert len(await outbox(app)) == paged
    clock.now = T0 + 15 * MIN
    await svc.incidents.tick(clock.now)
    [escalation] = (await outbox(app))[paged:]
    assert escalation.target == "channel:ch-hq"
    assert escalation.content["type"] == "button_template"
    assert escalation.text.startswith("⚠️ 15分間未対応: 大洲市立大洲小学校\nEscalated")
    clock.now = T0 + 30 * MIN
    await svc.incidents.tick(clock.now)
    assert len(await outbox(app)) == paged + 1  # once
    [incident] = await incidents(app)
    assert await actions_of(app, incident.id) == [
        "incident.opened", "incident.paged", "incident.escalated", "incident.escalation_sent",
    ]  # fmt: skip


async def test_an_acknowledged_incident_does_not_escalate(
    app: FastAPI, client: httpx.AsyncClient, clock: Clock
) -> None:
    svc = app.state.services
    await svc.incidents.on_changes(fault(T0))
    [incident] = await incidents(app)
    await svc.incidents.acknowledge(incident.id, "lineworks:tanaka")
    before = len(await outbox(app))
    clock.now = T0 + 20 * MIN
    await svc.incidents.tick(clock.now)
    assert len(await outbox(app)) == before


async def test_a_fault_that_clears_by_itself_sends_a_recovery(
    app: FastAPI, client: httpx.AsyncClient, clock: Clock
) -> None:
    svc = app.state.services
    await svc.incidents.on_changes(fault(T0))
    paged = len(await outbox(app))
    clock.now = T0 + 1 * MIN
    await svc.incidents.on_changes(recover(clock.now))
    clock.now = T0 + 3 * MIN
    await svc.incidents.tick(clock.now)
    recovery = (await outbox(app))[paged:]
    assert [s.target for s in recovery] == CHANNELS
    assert recovery[0].content["type"] == "text"
    assert recovery[0].text.startswith("✅ 復旧: 大洲市立大洲小学校\nRecovered: Ozu Elementary")
    assert "(11/24 18:00–18:03)" in recovery[0].text


async def test_a_flapping_port_is_paged_once(
    app: FastAPI, client: httpx.AsyncClient, clock: Clock
) -> None:
    svc = app.state.services
    for n in range(4):  # back within the debounce each time: one incident, recurring
        clock.now = T0 + n * 20 * S
        await svc.incidents.on_changes(fault(clock.now))
        clock.now += 10 * S
        await svc.incidents.on_changes(recover(clock.now))
    [incident] = await incidents(app)
    assert incident.occurrences == 4
    assert len(await outbox(app)) == 3


async def test_a_person_acknowledging_on_the_dashboard_is_told_to_the_channels(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await app.state.services.incidents.on_changes(fault(T0))
    [incident] = await incidents(app)
    paged = len(await outbox(app))
    acked = await client.post(f"/api/v1/incidents/{incident.id}/acknowledge",
                              headers={**ADMIN, "X-Actor": "hq-sato"})  # fmt: skip
    assert acked.status_code == 200, acked.text
    notices = (await outbox(app))[paged:]
    assert [s.target for s in notices] == CHANNELS
    assert notices[0].text.startswith(f"👤 対応中(hq-sato): #{incident.id} ポート故障")
    assert "incident.notice_sent" in await actions_of(app, incident.id)


async def test_held_bookings_reach_the_station_crew_channel_once(
    app: FastAPI, client: httpx.AsyncClient, clock: Clock
) -> None:
    svc = app.state.services
    async with svc.db.transaction() as session:
        session.add(Notification(
            kind="bookings_held", resident_id="crew", booking_id=None, created_at=T0,
            payload={"station_id": "ozu-01", "held": 3, "newly_held": 2, "reason": "port_offline",
                     "move_after_s": 7200.0, "move_at": (T0 + 2 * 60 * MIN).isoformat()},
        ))  # fmt: skip
    assert await svc.pager.tick(clock.now) == 1
    assert await svc.pager.tick(clock.now) == 0
    [sent] = await outbox(app)
    assert sent.target == "channel:ch-ozu"
    assert "予約保留: 大洲市立大洲小学校" in sent.text and "20:00" in sent.text
    async with svc.db.transaction() as session:
        [notice] = (await session.scalars(select(Notification))).all()
    assert notice.delivered_at == T0


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_page_between_a_resolve_s_read_and_its_write_is_followed_by_the_notice(
    app: FastAPI, client: httpx.AsyncClient, clock: Clock
) -> None:
    """Another process's tick pages the incident after this transaction read it unpaged."""
    svc = app.state.services
    await svc.incidents.on_changes(gateway("offline", T0))
    [incident] = await incidents(app)
    clock.now = T0 + 120 * S
    async with svc.db.transaction() as session:
        read = await session.get(Incident, incident.id)  # read while not yet paged
        assert read is not None and read.paged_at is None
        assert await svc.pager.tick(clock.now) == 3  # its own transaction, committed
        await svc.incidents.resolve_in(session, [incident.id], "lineworks:tanaka")
    notices = (await outbox(app))[3:]
    assert [s.target for s in notices] == CHANNELS
    assert notices[0].text.startswith(f"☑️ 解決(tanaka): #{incident.id} ゲートウェイ切断")
    assert (await actions_of(app, incident.id))[-3:] == [
        "incident.paged", "incident.resolved", "incident.notice_sent",
    ]  # fmt: skip


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_tick_skips_an_incident_being_resolved_and_never_pages_it(
    app: FastAPI, client: httpx.AsyncClient, clock: Clock
) -> None:
    svc = app.state.services
    await svc.incidents.on_changes(gateway("offline", T0))
    [incident] = await incidents(app)
    clock.now = T0 + 120 * S
    async with svc.db.transaction() as session:
        await svc.incidents.resolve_in(session, [incident.id], "hq-sato")  # row locked
        assert await svc.pager.tick(clock.now) == 0  # skipped, not waited for
    assert await svc.pager.tick(clock.now) == 0  # resolved: nothing to page any more
    assert await outbox(app) == []
    [after] = await incidents(app)
    assert (after.state, after.paged_at) == ("resolved", None)


async def test_the_sender_is_woken_once_the_pages_are_committed(
    app: FastAPI, client: httpx.AsyncClient, clock: Clock
) -> None:
    svc = app.state.services
    woken: list[int] = []
    pager = Pager(svc.db, svc.settings, wake=lambda: woken.append(len(woken)))
    incidents_ = IncidentService(svc.db, svc.settings, clock, hook=pager)
    await incidents_.on_changes(fault(T0))
    assert woken == [0]  # one wake for the three channels' rows
    [incident] = await incidents(app)
    async with svc.db.transaction() as session:
        await incidents_.acknowledge_in(session, [incident.id], "hq-sato")
        assert woken == [0]  # the notices are written, not yet committed: a sender would miss them
    assert woken == [0, 1]
    assert len(await outbox(app)) == 6


async def test_pages_wait_while_a_minute_s_worth_is_unsent_then_go_per_station(
    app: FastAPI, client: httpx.AsyncClient, clock: Clock
) -> None:
    svc = app.state.services
    slow = svc.settings.model_copy(update={"lineworks_requests_per_min": 6})
    pager = Pager(svc.db, slow, wake=lambda: None)
    incidents_ = IncidentService(svc.db, slow, clock, hook=pager)
    for port in (1, 2, 3, 4):  # one ingest batch each, as faults come one after another
        await incidents_.on_changes(fault(T0, port=port))
    sent = await outbox(app)
    assert len(sent) == 6  # ports 1 and 2, three channels each: a minute's worth unsent
    assert await pager.tick(T0 + 15 * S) == 0  # still unsent: ports 3 and 4 wait
    async with svc.db.transaction() as session:  # the sender catches up
        await session.execute(update(OutboxMessage).values(state="sent"))
    assert await pager.tick(T0 + 30 * S) == 3
    waited = (await outbox(app))[6:]
    assert [s.target for s in waited] == CHANNELS
    assert "障害 2件" in waited[0].text  # ports 3 and 4 of ozu-01, one message
    rows = await incidents(app)
    assert [r.paged_at for r in rows] == [T0, T0, T0 + 30 * S, T0 + 30 * S]
