"""What `/metrics` reads from the database for the alert rules: unresolved incidents by
kind and severity, gateways by state, bookings by status, and the messages gateways skipped."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from server.db.models import Booking, Drill, Gateway, Incident, SeqGap, Station, Unit

pytestmark = pytest.mark.anyio


async def test_incidents_gateways_and_gaps(app: FastAPI, client: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    async with app.state.services.db.transaction() as session:
        for n, (kind, severity, state) in enumerate([
            ("port_fault", "warning", "open"), ("port_fault", "warning", "acknowledged"),
            ("battery_low", "critical", "open"), ("port_fault", "warning", "resolved"),
        ]):  # fmt: skip
            session.add(Incident(kind=kind, severity=severity, state=state, dedupe_key=f"k{n}",
                                 opened_at=now, last_seen_at=now))  # fmt: skip
        session.add(Gateway(gw_id="gw-far", state="offline"))
        session.add(
            Drill(
                id=7,
                name="訓練",
                scenario="s",
                municipalities=["大洲市"],
                gw_id="drill-7",
                started_at=now,
                started_by="hq",
                ended_at=now,
            )
        )
        session.add(Gateway(gw_id="drill-7", state="offline"))  # the ended drill's: not counted
        real = (await session.scalars(select(Unit).where(Unit.station_id.is_not(None)))).first()
        assert real is not None and real.station_id is not None
        session.add(Station(id="twin-7", name_ja="【訓練】", name_en="[DRILL]", latitude=33.5,
                            longitude=132.5, drill_id=7))  # fmt: skip
        await session.flush()
        for n, station_id in enumerate([real.station_id, "twin-7", "twin-7"]):
            session.add(Booking(id=f"b{n}", resident_id=f"r{n}", station_id=station_id,
                                window_start=now, unit_pk=real.id, port=n + 1, ticket_code="T",
                                created_at=now, updated_at=now))  # fmt: skip
        session.add(Incident(kind="port_fault", severity="warning", state="open", dedupe_key="d",
                             opened_at=now, last_seen_at=now, drill_id=7))  # fmt: skip
        session.add_all([SeqGap(gw_id="gw-far", first_missing=5, last_missing=9, detected_at=now),
                         SeqGap(gw_id="gw-far", first_missing=20, last_missing=20,
                                detected_at=now)])  # fmt: skip
    text = (await client.get("/metrics")).text
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    opened = "chargenet_incidents_open"
    assert found[(opened, (("kind", "port_fault"), ("severity", "warning")))] == 2
    assert found[(opened, (("kind", "battery_low"), ("severity", "critical")))] == 1
    assert found[("chargenet_gateways", (("state", "online"),))] == 1  # the fixture's demo-gw
    assert found[("chargenet_gateways", (("state", "offline"),))] == 1
    assert found[("chargenet_bookings", (("status", "active"),))] == 1  # not the twin's two
    assert found[("chargenet_seq_gap_messages", (("gw_id", "gw-far"),))] == 6
