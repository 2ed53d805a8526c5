"""LINE notices: what residents are told without asking, rendered in both languages and
handed to the outbox exactly once, however many composers run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from linebot.v3.messaging import PushMessageRequest
from sqlalchemy import func, select, update

from server.booking.moves import (
    NOTIFY_CANCELLED,
    NOTIFY_CHECKED_IN,
    NOTIFY_COMPLETED,
    NOTIFY_HELD,
    NOTIFY_MOVED,
    NOTIFY_REMINDER,
    NOTIFY_RESTORED,
)
from server.booking.ranking import Option
from server.booking.service import BookingService
from server.booking.upkeep import ENDED_UNPLUGGED, ENDED_WINDOW_OVER
from server.booking.views import BookingView
from server.db.models import Drill, LineResident, Notification, OutboxMessage, Station
from server.db.session import Database
from server.ingest.fanout import FanOut
from server.line.messages import Postback, read_postback
from server.line.notices import Notice, NoticeComposer, render
from server.line.stations import StationInfo
from tests.conditions import async_read_until
from tests.server.booking_shell.test_upkeep import fault
from tests.server.booking_shell.world import (
    T0,
    W1,
    Clock,
    StationSpec,
    open_world,
    set_port,
    settings,
)

TZ = ZoneInfo("Asia/Tokyo")
START = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)  # 15:00 in Tokyo: 24-hour, never "3:00 PM"
OZU = StationInfo("ozu-01", "大洲市民会館", "Ozu Civic Hall", "愛媛県大洲市大洲690-1",
                  33.5065, 132.5447, 30)  # fmt: skip
UCHIKO = StationInfo("uchiko-02", "内子町役場", "Uchiko Town Hall", "愛媛県喜多郡内子町",
                     33.5333, 132.6581, 30)  # fmt: skip
STATIONS = {s.id: s for s in (OZU, UCHIKO)}


def view(station: StationInfo = UCHIKO, status: str = "active") -> BookingView:
    return BookingView(
        id="b" * 32, resident_id="line:U1", station_id=station.id, window_start=START,
        window_end=START + timedelta(minutes=30), unit_pk=1, port=2, status=status,
        ticket_code="K7Q2", created_at=START, updated_at=START, moved_from_id=None,
        place="battery 1 (rs485-1.1) port 2",
    )  # fmt: skip


LEFT = {"from": {"station_id": OZU.id, "window_start": START.isoformat(), "port": 1}}


def options() -> list[Option]:
    return [Option(UCHIKO.id, START + timedelta(minutes=m), 9.0, m, 18.0 + m, 2)
            for m in (0, 30, 60)]  # fmt: skip


NOTICES: dict[str, Notice] = {
    "moved": Notice(1, NOTIFY_MOVED, LEFT, view(), STATIONS),
    "cancelled": Notice(2, NOTIFY_CANCELLED, LEFT, view(OZU, "cancelled"), STATIONS, options()),
    "cancelled, nothing near": Notice(3, NOTIFY_CANCELLED, LEFT, view(OZU, "cancelled"), STATIONS),
    "restored": Notice(4, NOTIFY_RESTORED, {"from": None}, view(), STATIONS),
    "reminder": Notice(5, NOTIFY_REMINDER, {}, view(), STATIONS),
    "checked in": Notice(6, NOTIFY_CHECKED_IN, {}, view(status="checked_in"), STATIONS),
    "completed": Notice(7, NOTIFY_COMPLETED, {"ended": ENDED_UNPLUGGED}, view(), STATIONS),
    "window over": Notice(8, NOTIFY_COMPLETED, {"ended": ENDED_WINDOW_OVER}, view(), STATIONS),
}
SAYS: dict[str, dict[str, list[str]]] = {
    "moved": {"ja": ["大洲市民会館", "内子町役場 15:00〜15:30", "K7Q2"],
              "en": ["Ozu Civic Hall", "Uchiko Town Hall 15:00–15:30", "K7Q2"]},
    "cancelled": {"ja": ["申し訳ありません", "大洲市民会館（15:00〜）"],
                  "en": ["We are sorry", "Ozu Civic Hall (from 15:00)"]},
    "cancelled, nothing near": {"ja": ["申し訳ありません", "あらためて探せます"],
                                "en": ["We are sorry", "look again"]},
    "restored": {"ja": ["内子町役場が復旧", "15:00〜15:30", "K7Q2"],
                 "en": ["Uchiko Town Hall is back", "15:00–15:30", "K7Q2"]},
    "reminder": {"ja": ["まもなく", "内子町役場 15:00〜15:30", "K7Q2", "ケーブル"],
                 "en": ["starts soon", "Uchiko Town Hall 15:00–15:30", "K7Q2", "cable"]},
    "checked in": {"ja": ["内子町役場で充電が始まりました"],
                   "en": ["Charging has started at Uchiko Town Hall"]},
    "completed": {"ja": ["充電が終わりました"], "en": ["Charging is done"]},
    "window over": {"ja": ["時間が終わりました", "空けて"],
                    "en": ["window is over", "free the port"]},
}  # fmt: skip
"""What each notice's first message says, by language."""


def pushed(told: list[dict[str, Any]]) -> PushMessageRequest:
    """line-bot-sdk's own push request takes them, within LINE's limits."""
    request = PushMessageRequest.from_dict({"to": "U1", "messages": told})
    assert request is not None and 0 < len(request.messages) == len(told) <= 5
    for message in told:
        assert len(message.get("quickReply", {}).get("items", [])) <= 13
        if message["type"] == "text":
            assert 0 < len(message["text"]) <= 5000
    return request


@pytest.mark.parametrize("lang", ["ja", "en"])
@pytest.mark.parametrize("case", list(NOTICES))
def test_each_notice_is_told_in_the_residents_language(case: str, lang: str) -> None:
    told = render(NOTICES[case], lang, TZ)
    pushed(told)
    assert told[0]["type"] == "text"
    for words in SAYS[case][lang]:
        assert words in told[0]["text"]
    other = {"ja": "en", "en": "ja"}[lang]
    assert not any(w in told[0]["text"] for w in SAYS[case][other] if w not in SAYS[case][lang])
    assert "PM" not in told[0]["text"]
    menu = [item["action"]["label"] for item in told[-1]["quickReply"]["items"]]
    assert menu[:3] == (["充電予約", "予約確認", "キャンセル"] if lang == "ja"
                        else ["Charge", "Status", "Cancel"])  # fmt: skip


@pytest.mark.parametrize("case", ["moved", "restored"])
def test_a_moved_or_restored_booking_comes_with_its_ticket(case: str) -> None:
    _intro, ticket = render(NOTICES[case], "en", TZ)
    assert ticket["type"] == "flex" and ticket["contents"]["type"] == "bubble"
    assert "K7Q2" in ticket["altText"] and "Uchiko Town Hall" in ticket["altText"]


def test_an_apology_offers_the_fresh_options_to_book() -> None:
    _apology, carousel = render(NOTICES["cancelled"], "ja", TZ)
    bubbles = carousel["contents"]["contents"]
    assert len(bubbles) == 3
    books = [read_postback(b["footer"]["contents"][0]["action"]["data"]) for b in bubbles]
    assert [(r.action, r.params["s"]) for r in books if r] == [(Postback.BOOK, UCHIKO.id)] * 3
    assert [r.params["w"] for r in books if r] == [o.window_start.isoformat() for o in options()]
    assert len(render(NOTICES["cancelled, nothing near"], "ja", TZ)) == 1


def test_nothing_is_told_of_what_is_no_news_or_not_a_residents() -> None:
    gone = Notice(9, NOTIFY_MOVED, LEFT, None, STATIONS)
    cancelled_since = Notice(10, NOTIFY_REMINDER, {}, view(status="cancelled"), STATIONS)
    crews = Notice(11, NOTIFY_HELD, {"station_id": OZU.id}, None, STATIONS)
    assert [render(n, "ja", TZ) for n in (gone, cancelled_since, crews)] == [[], [], []]


# -- the composer, on both stores ------------------------------------------------------------

A = StationSpec("A", 33.840, 132.770, ports=3)
B = StationSpec("B", 33.845, 132.775, ports=4)


async def follow(db: Database, user_id: str, language: str, following: bool = True) -> None:
    async with db.transaction() as session:
        session.add(LineResident(user_id=user_id, language=language, following=following,
                                 step_data={}, created_at=T0, updated_at=T0))  # fmt: skip


async def outbox(db: Database) -> list[OutboxMessage]:
    async with db.transaction() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def notices(db: Database) -> dict[str, Notification]:
    async with db.transaction() as session:
        rows = await session.scalars(select(Notification).order_by(Notification.id))
        return {row.resident_id: row for row in rows}


class Wakes:
    """The outbox sender's wake-up, counted."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def composer(db: Database, service: BookingService, clock: Clock, wake: Callable[[], None],
             **options: Any) -> NoticeComposer:  # fmt: skip
    return NoticeComposer(db, settings(db.url), service, clock, wake, **options)


def test_a_moved_booking_after_a_port_fault_is_pushed_once_and_others_are_untouched(
    database_url: str,
) -> None:
    async def scenario() -> None:
        clock = Clock(T0)
        db, service, units = await open_world(database_url, [A, B], clock)
        wakes = Wakes()
        notices_ = composer(db, service, clock, wakes, period_s=3600.0)  # only wakes run it
        running = asyncio.create_task(notices_.run())
        try:
            await follow(db, "U1", "en")
            await follow(db, "Ugone", "ja", following=False)
            mine = await service.book("line:U1", "A", W1)
            await service.book("api:other", "A", W1)
            await service.book("line:Ugone", "A", W1)
            for port in (1, 2, 3):
                await set_port(db, units["A"], port, "faulted")
            fan_out = FanOut(db, [service.on_changes, notices_.on_changes])
            await fan_out(fault(units["A"], "A", 1, clock()))
            [row] = await async_read_until(lambda: outbox(db), bool, what="the push")
            moved = await service.active_for_resident("line:U1")
            assert moved is not None and moved.station_id == "B" and moved.id != mine.id
            assert (row.platform, row.target, row.reply_token) == ("line", "U1", None)
            told = await notices(db)
            assert row.source == f"notification:{told['line:U1'].id}"
            pushed(row.body)
            assert [m["type"] for m in row.body] == ["text", "flex"]
            start, end = (t.astimezone(TZ).strftime("%H:%M")
                          for t in (moved.window_start, moved.window_end))  # fmt: skip
            assert f"moved to B {start}–{end}. Your new code is {moved.ticket_code}." in (
                row.body[0]["text"])  # fmt: skip
            assert told["line:U1"].delivered_at == T0
            assert told["line:Ugone"].delivered_at == T0  # unfollowed: no push, not kept
            assert told["api:other"].delivered_at is None  # not a LINE resident: the API's
            assert wakes.count == 1
            assert await notices_.deliver() == 0  # told once
            assert len(await outbox(db)) == 1 and wakes.count == 1
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_a_cancelled_booking_gets_an_apology_with_options_it_can_book(database_url: str) -> None:
    lone = StationSpec("L", 33.840, 132.770, ports=1)
    near = StationSpec("N", 33.842, 132.772, ports=1)

    async def scenario() -> None:
        clock = Clock(T0)
        db, service, units = await open_world(database_url, [lone, near], clock)
        await set_port(db, units["N"], 1, "faulted")  # nowhere to move to, for now
        later = BookingService(db, settings(database_url), clock)  # another process
        try:
            await follow(db, "U2", "ja")
            lost = await service.book("line:U2", "L", W1)
            await set_port(db, units["L"], 1, "faulted")
            await service.on_changes(fault(units["L"], "L", 1, clock()))
            assert (await service.get(lost.id)).status == "cancelled"
            await set_port(db, units["N"], 1, "available")  # N is repaired meanwhile
            wakes = Wakes()
            assert await composer(db, later, clock, wakes).deliver() == 1
            [row] = await outbox(db)
            pushed(row.body)
            apology, carousel = row.body
            assert "申し訳ありません" in apology["text"] and "L（09:30〜）" in apology["text"]
            bubbles = carousel["contents"]["contents"]
            assert 1 <= len(bubbles) <= 3
            books = [read_postback(b["footer"]["contents"][0]["action"]["data"]) for b in bubbles]
            assert {r.params["s"] for r in books if r} == {"N"}  # never the lost station
            first = books[0]
            assert first is not None and first.action is Postback.BOOK
            booked = await later.book("line:U2", "N", datetime.fromisoformat(first.params["w"]))
            assert booked.status == "active" and wakes.count == 1
        finally:
            await later.close()
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_a_cancelled_drill_booking_is_offered_the_drills_twins_never_a_real_place(
    database_url: str,
) -> None:
    real = StationSpec("R", 33.8405, 132.7705, ports=1)  # nearest to the lost twin, and real
    lost, other = StationSpec("T1", 33.840, 132.770, ports=1), StationSpec("T2", 33.850, 132.78)

    async def scenario() -> None:
        clock = Clock(T0)
        db, service, units = await open_world(database_url, [real, lost, other], clock)
        async with db.transaction() as session:
            session.add(Drill(id=1, name="訓練", scenario="s", municipalities=["大洲市"],
                              gw_id="drill-1", started_at=T0, started_by="hq"))  # fmt: skip
            await session.flush()
            await session.execute(
                update(Station).where(Station.id.in_(["T1", "T2"])).values(drill_id=1)
            )
        service.invalidate_stations()
        for port in range(1, 5):
            await set_port(db, units["T2"], port, "faulted")  # nowhere to move to, for now
        try:
            await follow(db, "U3", "ja")
            booked = await service.book("line:U3", "T1", W1)
            await set_port(db, units["T1"], 1, "faulted")
            await service.on_changes(fault(units["T1"], "T1", 1, clock()))
            assert (await service.get(booked.id)).status == "cancelled"
            await set_port(db, units["T2"], 1, "available")  # T2 is repaired meanwhile
            later = BookingService(db, settings(database_url), clock)  # another process
            try:
                assert await composer(db, later, clock, Wakes()).deliver() == 1
            finally:
                await later.close()
            [row] = await outbox(db)
            _apology, carousel = row.body
            bubbles = carousel["contents"]["contents"]
            books = [read_postback(b["footer"]["contents"][0]["action"]["data"]) for b in bubbles]
            assert {r.params["s"] for r in books if r} == {"T2"}  # not R, though R is nearer
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_two_composers_on_one_database_never_both_deliver_a_notice(database_url: str) -> None:
    residents = 60

    async def scenario() -> None:
        clock = Clock(T0)
        db, service, _units = await open_world(database_url, [A], clock)
        other_db = Database(database_url)  # a second server process, its own pool
        other_service = BookingService(other_db, settings(database_url), clock)
        try:
            booking = await service.book("line:U0", "A", W1)
            async with db.transaction() as session:
                for n in range(residents):
                    session.add(Notification(kind=NOTIFY_CHECKED_IN, resident_id=f"line:U{n}",
                                             booking_id=booking.id, payload={},
                                             created_at=T0))  # fmt: skip
            wakes = Wakes()
            pair = (composer(db, service, clock, wakes, batch=7),
                    composer(other_db, other_service, clock, wakes, batch=7))  # fmt: skip

            async def drain(c: NoticeComposer) -> int:
                claimed = 0
                while await undelivered(db):
                    claimed += await c.deliver()
                return claimed

            claimed = await asyncio.gather(*(drain(c) for c in pair))
            assert sum(claimed) == residents
            sent = await outbox(db)
            assert len(sent) == residents
            assert len({row.source for row in sent}) == residents
            assert sorted(row.target for row in sent) == sorted(f"U{n}" for n in range(residents))
        finally:
            await other_service.close()
            await other_db.dispose()
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


async def undelivered(db: Database) -> int:
    async with db.transaction() as session:
        found = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.delivered_at.is_(None))
        )
    return int(found or 0)
