"""After-action reports (issue 12, item 6): over a simulated event written to the database,
every figure is what was put in, per station, per municipality and in total; the CSV, the
kintone records, the PDF and the PNG say the same and render; a municipality's operator
gets its own municipality only; `chargenet report` writes the same documents."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import struct
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pypdfium2
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from server.booking.ranking import walking_metres
from server.db.models import Booking, Incident, Notification, OutboxMessage, Unit
from server.reports.export import BOOKING_FIELDS, INCIDENT_FIELDS, SUMMARY_FIELDS
from server.reports.figures import Figures, Period
from server.reports.read import read_report
from tests.server.api.conftest import ADMIN, demo_app
from tests.server.api.test_operators import UWA, make

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
PERIOD = Period(T0, T0 + timedelta(hours=6))
OZU = "大洲市"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def counts(line: int = 0, lineworks: int = 0) -> dict[str, int]:
    return {"line": line, "lineworks": lineworks}


async def unit_pk(app: FastAPI, unit: str) -> int:
    async with app.state.services.db.transaction() as session:
        found: int | None = await session.scalar(select(Unit.id).where(Unit.unit == unit))
    assert found is not None
    return found


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    """The demo app on SQLite and on PostgreSQL: every test here runs on both stores."""
    async with demo_app(database_url) as application:
        yield application


@pytest.fixture
async def event(app: FastAPI, client: httpx.AsyncClient) -> None:
    """A night at two 大洲市 stations and one 宇和島市 station (times in minutes from T0)."""
    assert (await client.post("/api/v1/stations", json=UWA, headers=ADMIN)).status_code == 201
    moved = await client.put("/api/v1/batteries/demo-gw/tcp-1.1", json={"station_id": "uwa-01"},
                             headers=ADMIN)  # fmt: skip
    assert moved.status_code == 200, moved.text
    ozu1, ozu2 = await unit_pk(app, "rs485-1.1"), await unit_pk(app, "rs485-1.2")
    uwa = await unit_pk(app, "tcp-1.1")

    def booking(id_: str, station: str, unit: int, status: str, created: float, window: float,
                moved_from: str | None = None, walk_m: int | None = None) -> Booking:  # fmt: skip
        return Booking(id=id_, resident_id=f"U{id_}", station_id=station, window_start=at(window),
                       unit_pk=unit, port=1, status=status, ticket_code=id_[-4:].upper(),
                       created_at=at(created), updated_at=at(created),
                       moved_from_id=moved_from, walk_m=walk_m)  # fmt: skip

    def incident(kind: str, station: str | None, unit: str | None, port: int | None,
                 opened: float, ack: float | None, resolved: float | None,
                 cleared: float | None = None) -> Incident:  # fmt: skip
        return Incident(
            kind=kind, dedupe_key=f"{kind}:{unit}:{port}:{opened}", station_id=station,
            gw_id="demo-gw", unit=unit, port=port, opened_at=at(opened),
            last_seen_at=at(opened), state="resolved" if resolved is not None else "open",
            acknowledged_at=None if ack is None else at(ack), acknowledged_by="crew-a",
            resolved_at=None if resolved is None else at(resolved),
            resolved_by=None if resolved is None else "crew-b",
            condition_cleared_at=None if cleared is None else at(cleared),
        )  # fmt: skip

    def message(platform: str, state: str, source: str, created: float) -> OutboxMessage:
        return OutboxMessage(platform=platform, target="t", body=[], retry_key=str(uuid.uuid4()),
                             source=source, state=state, next_at=at(created),
                             created_at=at(created),
                             sent_at=at(created) if state == "sent" else None)  # fmt: skip

    async with app.state.services.db.transaction() as session:
        session.add_all([
            # wait in minutes; walk in metres, none: booked without a location (or moved)
            booking("bk-b1", "ozu-01", ozu1, "completed", -10, 0, walk_m=400),  # wait 10
            booking("bk-b2", "ozu-01", ozu1, "checked_in", 0, 30, walk_m=1200),  # 30
            booking("bk-b3", "ozu-01", ozu1, "no_show", 0, 60),  # 60
            booking("bk-b4", "ozu-01", ozu1, "cancelled", 20, 60, walk_m=800),  # 40
            booking("bk-b5", "ozu-01", ozu1, "moved", 5, 90, walk_m=300),
            booking("bk-b6", "ozu-02", ozu2, "completed", 80, 120, moved_from="bk-b5"),  # 115
            booking("bk-b7", "ozu-01", ozu1, "active", 100, 150, walk_m=2000),  # 50
            booking("bk-b8", "ozu-01", ozu1, "completed", 100, 7 * 60, walk_m=100),  # after
            booking("bk-b9", "uwa-01", uwa, "completed", 0, 30, walk_m=650),  # 30
        ])  # fmt: skip
        faults = [
            incident("port_fault", "ozu-01", "rs485-1.1", 1, 60, 65, 130, cleared=120),
            incident("port_fault", "ozu-01", "rs485-1.1", 2, -60, None, None),  # before: 6 h
            incident("battery_alarm", "ozu-02", "rs485-1.2", None, 30, 45, 90),
            incident("gateway_offline", None, None, None, 10, None, None),
            incident("port_fault", "uwa-01", "tcp-1.1", 1, 200, 202, 260),
        ]
        session.add_all(faults)
        notice = Notification(kind="booked", resident_id="Ubk-b1", booking_id="bk-b1",
                              created_at=at(-10))  # fmt: skip
        session.add(notice)
        await session.flush()
        i1, _, i3, _, i5 = (f.id for f in faults)
        session.add_all([
            message("line", "sent", f"notification:{notice.id}", -10 + 11),
            message("line", "failed", f"notification:{notice.id}", 2),
            *(message("lineworks", "sent", f"incident:{i1}:opened", 61) for _ in range(3)),
            message("lineworks", "pending", f"incident:{i3}.{i1}:opened", 31),
            message("line", "sent", "line_event:abc", 5),
            message("lineworks", "sent", f"incident:{i5}:opened", 200),
            message("line", "sent", "line_event:old", -30),  # before the period
        ])  # fmt: skip


OZU_01 = Figures(
    bookings=5, served=2, no_shows=1, cancelled=1, active=1, moved=1,
    wait_p50_min=40.0, wait_p95_min=60.0, walk_p50_m=800.0, walk_p95_m=2000.0,
    walk_p50_min=12.0, walk_p95_min=30.0, no_location=1, incidents=1, acknowledged=1, resolved=1,
    ack_p50_min=5.0, ack_p95_min=5.0, resolve_p50_min=70.0, resolve_p95_min=70.0,
    capacity_lost_port_h=7.0, messages_sent=counts(1, 3), messages_failed=counts(1),
    messages_pending=counts(),
)  # fmt: skip
OZU_02 = Figures(
    bookings=1, served=1, no_shows=0, cancelled=0, active=0, moved=0,
    wait_p50_min=115.0, wait_p95_min=115.0, walk_p50_m=None, walk_p95_m=None,
    walk_p50_min=None, walk_p95_min=None, no_location=1, incidents=1, acknowledged=1, resolved=1,
    ack_p50_min=15.0, ack_p95_min=15.0, resolve_p50_min=60.0, resolve_p95_min=60.0,
    capacity_lost_port_h=0.0, messages_sent=counts(), messages_failed=counts(),
    messages_pending=counts(lineworks=1),
)  # fmt: skip
OZU_TOTAL = Figures(
    bookings=6, served=3, no_shows=1, cancelled=1, active=1, moved=1,
    wait_p50_min=40.0, wait_p95_min=115.0, walk_p50_m=800.0, walk_p95_m=2000.0,
    walk_p50_min=12.0, walk_p95_min=30.0, no_location=2, incidents=2, acknowledged=2, resolved=2,
    ack_p50_min=5.0, ack_p95_min=15.0, resolve_p50_min=60.0, resolve_p95_min=70.0,
    capacity_lost_port_h=7.0, messages_sent=counts(1, 3), messages_failed=counts(1),
    messages_pending=counts(lineworks=1),
)  # fmt: skip
ALL_TOTAL = Figures(
    bookings=7, served=4, no_shows=1, cancelled=1, active=1, moved=1,
    wait_p50_min=40.0, wait_p95_min=115.0, walk_p50_m=800.0, walk_p95_m=2000.0,
    walk_p50_min=12.0, walk_p95_min=30.0, no_location=2, incidents=4, acknowledged=3, resolved=3,
    ack_p50_min=5.0, ack_p95_min=15.0, resolve_p50_min=60.0, resolve_p95_min=70.0,
    capacity_lost_port_h=8.0, messages_sent=counts(2, 4), messages_failed=counts(1),
    messages_pending=counts(lineworks=1),
)  # fmt: skip


async def test_the_figures_are_what_the_database_holds(app: FastAPI, event: None) -> None:
    ozu = await read_report(app.state.services.db, PERIOD, OZU)
    stations = {s.id: f for s, f in ozu.stations}
    assert set(stations) == {f"ozu-{n:02d}" for n in range(1, 13)}
    assert stations["ozu-01"] == OZU_01
    assert stations["ozu-02"] == OZU_02
    assert stations["ozu-03"].bookings == 0 and stations["ozu-03"].wait_p50_min is None
    assert ozu.total == OZU_TOTAL
    everywhere = await read_report(app.state.services.db, PERIOD, None)
    assert everywhere.total == ALL_TOTAL
    assert {s.id for s, _ in everywhere.stations} == {*stations, "uwa-01"}


async def test_a_booking_made_from_a_location_keeps_its_walk_only(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    station = (await client.get("/api/v1/stations/ozu-02")).json()
    windows = (await client.get("/api/v1/stations/ozu-02/windows")).json()["windows"]
    here = {"latitude": 33.52, "longitude": 132.55}
    made = {}
    for resident, where in (("r-here", here), ("r-nowhere", {})):
        body = {"resident_id": resident, "station_id": "ozu-02",
                "window_start": windows[0]["start"], **where}  # fmt: skip
        reply = await client.post("/api/v1/bookings", json=body, headers=ADMIN)
        assert reply.status_code == 201, reply.text
        made[resident] = reply.json()["id"]
    async with app.state.services.db.transaction() as session:
        walks = dict((await session.execute(select(Booking.id, Booking.walk_m))).all())
    expected = walking_metres(33.52, 132.55, station["latitude"], station["longitude"])
    assert walks[made["r-here"]] == round(expected) and expected > 1000
    assert walks[made["r-nowhere"]] is None
    half = {"resident_id": "r-half", "station_id": "ozu-02", "window_start": windows[0]["start"],
            "latitude": 33.52}  # fmt: skip
    reply = await client.post("/api/v1/bookings", json=half, headers=ADMIN)
    assert reply.status_code == 201
    async with app.state.services.db.transaction() as session:
        assert await session.scalar(select(Booking.walk_m).where(
            Booking.id == reply.json()["id"])) is None  # fmt: skip


def rows(body: bytes) -> list[dict[str, str]]:
    assert body.startswith("\ufeff".encode())  # UTF-8 with a BOM
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


async def download(client: httpx.AsyncClient, fmt: str, headers: dict[str, str] = ADMIN,
                   **extra: str) -> httpx.Response:  # fmt: skip
    params = {"start": PERIOD.start.isoformat(), "end": PERIOD.end.isoformat(), "format": fmt}
    return await client.get("/api/v1/reports", params={**params, **extra}, headers=headers)


async def test_the_csv_says_the_figures(client: httpx.AsyncClient, event: None) -> None:
    reply = await download(client, "csv", municipality=OZU)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "text/csv; charset=utf-8"
    assert reply.headers["content-disposition"].startswith("attachment; filename=")
    found = rows(reply.content)
    assert list(found[0]) == list(SUMMARY_FIELDS)
    by = {r["station_id"] or r["scope"]: r for r in found}
    assert by["ozu-01"]["station_name_ja"] == "大洲市立大洲小学校"
    assert {k: by["ozu-01"][k] for k in ("bookings", "served", "no_shows", "moved",
                                           "wait_p50_min", "wait_p95_min", "walk_p50_m",
                                           "walk_p95_m", "walk_p50_min", "no_location",
                                           "capacity_lost_port_h", "messages_sent_lineworks",
                                           "messages_failed_line")} == {
        "bookings": "5", "served": "2", "no_shows": "1", "moved": "1", "wait_p50_min": "40.0",
        "wait_p95_min": "60.0", "walk_p50_m": "800", "walk_p95_m": "2000",
        "walk_p50_min": "12.0", "no_location": "1", "capacity_lost_port_h": "7.00",
        "messages_sent_lineworks": "3", "messages_failed_line": "1",
    }  # fmt: skip
    total = by["total"]
    keys = ("bookings", "incidents", "ack_p95_min", "resolve_p50_min",
            "messages_pending_lineworks", "period_start")  # fmt: skip
    assert [total[k] for k in keys] == ["6", "2", "15.0", "60.0", "1", "2026-12-06 18:00"]


async def test_kintone_records_one_row_per_booking_and_incident(
    client: httpx.AsyncClient, event: None
) -> None:
    bookings = rows((await download(client, "kintone-bookings", municipality=OZU)).content)
    assert list(bookings[0]) == list(BOOKING_FIELDS)
    assert [b["booking_id"] for b in bookings] == [f"bk-b{n}" for n in (1, 2, 3, 4, 5, 6, 7)]
    six = next(b for b in bookings if b["booking_id"] == "bk-b6")
    assert (six["status"], six["moved_from_id"], six["wait_min"], six["window_start"],
            six["requested_at"]) == ("completed", "bk-b5", "115.0", "2026-12-06 20:00",
                                     "2026-12-06 19:20")  # fmt: skip
    assert all(not any(v.startswith("U") for v in b.values()) for b in bookings)  # no resident
    incidents = rows((await download(client, "kintone-incidents")).content)
    assert list(incidents[0]) == list(INCIDENT_FIELDS)
    assert [(i["kind"], i["ack_min"], i["resolve_min"]) for i in incidents] == [
        ("gateway_offline", "", ""), ("battery_alarm", "15.0", "60.0"),
        ("port_fault", "5.0", "70.0"), ("port_fault", "2.0", "60.0"),
    ]  # fmt: skip


async def test_the_pdf_and_the_png_render(client: httpx.AsyncClient, event: None) -> None:
    pdf = await download(client, "pdf", municipality=OZU)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    document = pypdfium2.PdfDocument(pdf.content)
    assert len(document) == 2
    page = document[0].render(scale=1).to_pil()
    assert page.size in ((595, 842), (596, 842))  # A4 at 72 dpi, rounded
    assert page.convert("L").getextrema()[0] < 100  # something dark is drawn on it
    text = document[0].get_textpage().get_text_range()
    assert "bookings 6" in text and "capacity lost to port faults 7.00 port-hours" in text
    assert "walk p50 800 m (12.0 min) p95 2000 m (30.0 min) no location 2" in text
    assert "大洲市" in text  # drawn in the Japanese font, not as boxes
    document.close()
    png = await download(client, "png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png.content[16:24])
    assert (width, height) == (827, 1169)


async def test_a_municipality_gets_its_own_report_only(
    client: httpx.AsyncClient, event: None
) -> None:
    ozu = await make(client, "ozu-sato", "municipality", OZU)
    own = rows((await download(client, "csv", headers=ozu)).content)
    assert {r["municipality"] for r in own} == {OZU}
    assert own[-1]["bookings"] == "6"
    other = await download(client, "csv", headers=ozu, municipality="宇和島市")
    assert other.status_code == 403
    backwards = await download(client, "csv", start=PERIOD.end.isoformat(),
                               end=PERIOD.start.isoformat())  # fmt: skip
    assert backwards.status_code == 422
    assert (await client.get("/api/v1/reports", params={"start": "x"})).status_code == 401


async def chargenet_report(url: str, *argv: str) -> bytes:
    """`chargenet report ...` as an operator runs it: its own process, stdout the document."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chargenet", "report", *argv, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "CHARGENET_DATABASE_URL": url},
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await child.communicate()
    assert child.returncode == 0, err.decode()
    return out


async def test_the_cli_writes_the_same_documents(
    client: httpx.AsyncClient, event: None, database_url: str, tmp_path: Path
) -> None:
    argv = ["--start", "2026-12-06T18:00:00+09:00", "--end", "2026-12-07T00:00:00+09:00",
            "--municipality", OZU]  # fmt: skip
    csv_body = await chargenet_report(database_url, *argv)
    assert csv_body == (await download(client, "csv", municipality=OZU)).content
    pdf = tmp_path / "ozu.pdf"
    assert await chargenet_report(database_url, *argv, "--format", "pdf", "--out", str(pdf)) == b""
    document = pypdfium2.PdfDocument(pdf.read_bytes())
    assert len(document) == 2
    document.close()
