"""Each conversation handler alone, with a fake desk: no database, no HTTP, milliseconds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from linebot.v3.messaging import ReplyMessageRequest

from server.announcements.audience import Heard, Sent, latest
from server.booking.ranking import Option
from server.booking.views import BookingView
from server.errors import Conflict, Invalid, NotFound
from server.line import conversation as talk
from server.line.conversation import Ask, Chat, Offer, Registration, Reply, Ticket
from server.line.events import Kind, Point, ResidentEvent
from server.line.messages import Postback
from server.line.stations import StationInfo
from tests.server.line.conftest import actions

T0 = datetime(2026, 12, 3, 4, 30, tzinfo=UTC)
A = StationInfo("a-01", "避難所A", "Shelter A", "住所A", 33.5, 132.5, 30)
B = StationInfo("b-01", "避難所B", "Shelter B", "住所B", 33.51, 132.51, 30)
D = StationInfo("drill1-a-01", "【訓練】避難所A", "[DRILL] Shelter A", "住所A", 33.5, 132.5, 30, 1)
STATIONS = {A.id: A, B.id: B, D.id: D}


@dataclass
class FakeDesk:
    """The booking desk as a dict: windows per station, bookings per resident."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Tokyo"))
    free: dict[tuple[str, datetime], int] = field(default_factory=dict)
    bookings: dict[str, BookingView] = field(default_factory=dict)
    asked: list[tuple[float, float]] = field(default_factory=list)
    drilling: bool = True
    """A drill runs (its twin `D` is offered to participants)."""
    district_lists: dict[str, list[str]] = field(default_factory=dict)
    registrations: dict[str, Registration] = field(default_factory=dict)
    heard: list[Heard] = field(default_factory=list)
    """Sent announcements, newest first (`server.announcements.audience.latest` picks)."""

    def offer(self, station_ids: Sequence[str]) -> Offer:
        found = [Option(sid, start, 5.0, 0.0, 10.0, n)
                 for (sid, start), n in sorted(self.free.items(), key=lambda kv: kv[0][1])
                 if sid in station_ids and n > 0]  # fmt: skip
        return Offer(found[:3], {s: STATIONS[s] for s in station_ids if s in STATIONS})

    async def options_near(
        self, latitude: float, longitude: float, resident: str | None = None
    ) -> Offer:
        self.asked.append((latitude, longitude))
        return self.offer([s.id for s in STATIONS.values() if s.drill_id is None])

    async def options_at(self, station_id: str, resident: str | None = None) -> Offer:
        return self.offer([station_id])

    async def find(self, text: str) -> Sequence[StationInfo]:
        return [s for s in STATIONS.values() if text in (s.name_ja, s.name_en.lower())]

    async def station(self, station_id: str) -> StationInfo | None:
        return STATIONS.get(station_id)

    async def drill_stations(self) -> Sequence[StationInfo]:
        return [s for s in STATIONS.values() if s.drill_id is not None and self.drilling]

    async def active(self, resident: str) -> Ticket | None:
        found = self.bookings.get(resident)
        return Ticket(found, STATIONS[found.station_id]) if found else None

    async def book(
        self, resident: str, station_id: str, window_start: datetime, walk_m: int | None = None
    ) -> Ticket:
        if station_id not in STATIONS:
            raise NotFound(station_id)
        if window_start < T0:
            raise Invalid("past")
        if resident in self.bookings:
            raise Conflict("booked", code="already_booked")
        if self.free.get((station_id, window_start), 0) <= 0:
            raise Conflict("full", code="window_full")
        self.free[(station_id, window_start)] -= 1
        view = BookingView(
            id=f"bk{len(self.bookings)}{station_id}", resident_id=resident, station_id=station_id,
            window_start=window_start, window_end=window_start + timedelta(minutes=30),
            unit_pk=1, port=1, status="active", ticket_code="C0DE", created_at=T0,
            updated_at=T0, moved_from_id=None, place="port 1", walk_m=walk_m,
        )  # fmt: skip
        self.bookings[resident] = view
        return Ticket(view, STATIONS[station_id])

    async def cancel(self, booking_id: str) -> Ticket:
        for resident, view in list(self.bookings.items()):
            if view.id == booking_id:
                del self.bookings[resident]
                self.free[(view.station_id, view.window_start)] += 1
                return Ticket(replace(view, status="cancelled"), STATIONS[view.station_id])
        raise Conflict("gone", code="not_active")

    async def municipalities(self) -> Sequence[str]:
        return sorted(self.district_lists)

    async def districts(self, municipality: str) -> Sequence[str]:
        return self.district_lists.get(municipality, [])

    async def shelters(self, municipality: str) -> Sequence[StationInfo]:
        return [s for s in STATIONS.values() if s.drill_id is None and municipality == "大洲市"]

    async def registration(self, user_id: str) -> Registration | None:
        return self.registrations.get(user_id)

    async def register(self, registration: Registration) -> None:
        self.registrations[registration.user_id] = registration

    async def unregister(self, user_id: str) -> bool:
        return self.registrations.pop(user_id, None) is not None

    async def announcements(
        self, registration: Registration, drills: bool, count: int
    ) -> Sequence[Sent]:
        mine = [h for h in self.heard if h.targets.municipality == registration.municipality]
        return latest(mine, registration.district, registration.stay, drills, count,
                      registration.station_id)  # fmt: skip


def desk_with_windows() -> FakeDesk:
    return FakeDesk(free={(A.id, T0): 2, (A.id, T0 + timedelta(minutes=30)): 1, (B.id, T0): 1})


def run(
    handler: talk.Handler,
    desk: FakeDesk,
    chat: Chat | None = None,
    *,
    kind: Kind = Kind.TEXT,
    point: Point | None = None,
    params: dict[str, str] | None = None,
    **named: str,
) -> Reply:
    """The handler's reply to one event; checked against line-bot-sdk's request model."""
    event = ResidentEvent("e1", "U1", kind, 0, reply_token="r", point=point)

    async def handle() -> Reply:
        return await handler(Ask(event, chat or Chat("U1"), desk, {**(params or {}), **named}))

    reply = asyncio.run(handle())
    assert 0 <= len(reply.messages) <= 5
    if reply.messages:
        ReplyMessageRequest.from_dict({"replyToken": "r", "messages": list(reply.messages)})
    return reply


def shown(reply: Reply) -> str:
    return json.dumps(list(reply.messages), ensure_ascii=False)


def test_follow_greets_with_the_menu_and_unfollow_forgets() -> None:
    pending = Chat("U1", step=talk.STEP_LOCATION, step_data={"x": 1}, following=False)
    greeted = run(talk.on_follow, FakeDesk(), pending)
    assert "充電" in greeted.messages[0]["text"]
    labels = [i["action"]["label"] for i in greeted.messages[0]["quickReply"]["items"]]
    assert labels == ["充電予約", "予約確認", "キャンセル", "English"]
    assert greeted.chat.following and greeted.chat.step is None
    gone = run(talk.on_unfollow, FakeDesk(), pending)
    assert gone.messages == () and not gone.chat.following
    assert gone.chat.step is None and gone.chat.step_data == {}


def test_charge_asks_for_a_location() -> None:
    reply = run(talk.on_charge, FakeDesk(), Chat("U1", language="en"))
    assert "location" in reply.messages[0]["text"]
    assert reply.messages[0]["quickReply"]["items"][0]["action"]["type"] == "location"
    assert reply.chat.step == talk.STEP_LOCATION


def test_a_location_gets_up_to_three_options_and_a_lost_one_is_asked_again() -> None:
    desk = desk_with_windows()
    reply = run(talk.on_location, desk, kind=Kind.LOCATION, point=Point(33.5, 132.5))
    assert desk.asked == [(33.5, 132.5)]
    assert len(actions(list(reply.messages), Postback.BOOK)) == 3
    assert reply.messages[1]["contents"]["type"] == "carousel"
    again = run(talk.on_location, desk, kind=Kind.LOCATION)
    assert "もう一度" in again.messages[0]["text"] and desk.asked == [(33.5, 132.5)]
    none = run(talk.on_location, FakeDesk(), kind=Kind.LOCATION, point=Point(33.5, 132.5))
    assert "空いている枠がありません" in none.messages[0]["text"]


def test_a_poster_shows_its_station_and_an_unknown_one_asks_where() -> None:
    reply = run(talk.on_poster, desk_with_windows(), station=A.id)
    assert {b["s"] for b in actions(list(reply.messages), Postback.BOOK)} == {A.id}
    unknown = run(talk.on_poster, desk_with_windows(), station="zz-99")
    assert "zz-99" in unknown.messages[0]["text"]
    assert unknown.chat.step == talk.STEP_LOCATION


def test_a_typed_name_is_a_place_or_else_a_hint() -> None:
    desk = desk_with_windows()
    named = run(talk.on_place, desk, query="避難所B")
    assert {b["s"] for b in actions(list(named.messages), Postback.BOOK)} == {B.id}
    asked = Chat("U1", step=talk.STEP_LOCATION)
    unknown = run(talk.on_place, desk, asked, query="どこか")
    assert "どこか" in unknown.messages[0]["text"]
    assert unknown.messages[0]["quickReply"]["items"][0]["action"]["type"] == "location"
    hint = run(talk.on_place, desk, query="どこか")
    assert "わかりませんでした" in hint.messages[0]["text"]


def test_book_gives_a_ticket_and_a_full_or_past_window_fresh_options() -> None:
    desk = desk_with_windows()
    start = (T0 + timedelta(minutes=30)).isoformat()
    booked = run(talk.on_book, desk, Chat("U1", step=talk.STEP_LOCATION), s=A.id, w=start, m="850")
    assert "予約しました" in booked.messages[0]["text"] and "C0DE" in shown(booked)
    assert desk.bookings["line:U1"].walk_m == 850  # the option's walk, kept for the reports
    assert booked.chat.step is None
    full = run(talk.on_book, desk, Chat("U2"), s=A.id, w=start)
    assert "埋まって" in full.messages[0]["text"]
    offered = actions(list(full.messages), Postback.BOOK)
    assert offered == [{"s": A.id, "w": T0.isoformat(), "m": "333"}]  # 5 minutes' walk
    past = run(talk.on_book, desk, Chat("U3"), s=A.id, w=(T0 - timedelta(hours=1)).isoformat())
    assert "締め切られました" in past.messages[0]["text"]
    garbled = run(talk.on_book, desk, Chat("U4"), s=A.id, w="yesterday")
    assert "わかりませんでした" in garbled.messages[0]["text"]


def test_a_second_attempt_shows_the_booking_and_offers_the_change() -> None:
    desk = desk_with_windows()
    run(talk.on_book, desk, s=A.id, w=T0.isoformat())
    same = run(talk.on_book, desk, s=A.id, w=T0.isoformat())
    assert "予約しました" in same.messages[0]["text"]
    other = run(talk.on_book, desk, s=B.id, w=T0.isoformat())
    assert "すでに予約" in other.messages[0]["text"] and "C0DE" in shown(other)
    [change] = actions(list(other.messages), Postback.CHANGE)
    assert change == {"b": desk.bookings["line:U1"].id, "s": B.id, "w": T0.isoformat()}
    changed = run(talk.on_change, desk, params=change)
    assert "変更しました" in changed.messages[0]["text"]
    assert desk.bookings["line:U1"].station_id == B.id
    assert desk.free[(A.id, T0)] == 2  # the old place went back


def test_a_change_to_a_full_window_keeps_the_booking() -> None:
    desk = desk_with_windows()
    run(talk.on_book, desk, s=A.id, w=T0.isoformat())
    old = desk.bookings["line:U1"]
    desk.free[(B.id, T0)] = 0
    kept = run(talk.on_change, desk, b=old.id, s=B.id, w=T0.isoformat())
    assert "埋まって" in kept.messages[0]["text"]
    now = desk.bookings["line:U1"]
    assert (now.station_id, now.window_start) == (A.id, T0)


def test_status_and_cancel_at_any_point() -> None:
    desk = desk_with_windows()
    mid = Chat("U1", language="en", step=talk.STEP_LOCATION)
    assert "no booking" in run(talk.on_status, desk, mid).messages[0]["text"]
    assert run(talk.on_status, desk, mid).chat.step == talk.STEP_LOCATION  # still open
    assert "no booking to cancel" in run(talk.on_cancel, desk, mid).messages[0]["text"]
    run(talk.on_book, desk, mid, s=A.id, w=T0.isoformat())
    status = run(talk.on_status, desk, mid)
    assert "C0DE" in shown(status) and "Shelter A" in shown(status)
    cancelled = run(talk.on_cancel, desk, mid)
    assert "cancelled (Shelter A 12/3 13:30–14:00)" in cancelled.messages[0]["text"]
    assert cancelled.chat.step is None and desk.bookings == {}


def test_language_is_the_residents_choice() -> None:
    english = run(talk.on_language, FakeDesk(), Chat("U1"), l="en")
    assert english.chat.language == "en" and english.chat.language_chosen
    assert "English" in english.messages[0]["text"]
    japanese = run(talk.on_language, FakeDesk(), english.chat, l="ja")
    assert japanese.chat.language == "ja" and "日本語" in japanese.messages[0]["text"]


def test_media_other_and_help_answer_briefly() -> None:
    for handler, words in ((talk.on_media, "ありがとう"), (talk.on_other, "わかりません"),
                           (talk.on_help, "充電")):  # fmt: skip
        reply = run(handler, FakeDesk())
        assert len(reply.messages) == 1 and words in reply.messages[0]["text"]
        assert len(reply.messages[0]["quickReply"]["items"]) == 4


def test_only_a_drill_participant_is_offered_and_books_a_drill_station() -> None:
    desk = FakeDesk(free={(A.id, T0): 1, (D.id, T0): 2})
    outsider = run(talk.on_drill, desk, Chat("U1"))
    assert "訓練参加" in outsider.messages[0]["text"]
    refused = run(talk.on_book, desk, Chat("U1"), s=D.id, w=T0.isoformat())
    assert "参加者だけ" in refused.messages[0]["text"] and "U1" not in str(desk.bookings)
    joined = run(talk.on_drill_join, desk, Chat("U1"))
    assert joined.chat.drill_opt_in and "訓練不参加" in joined.messages[0]["text"]
    offered = run(talk.on_drill, desk, joined.chat)
    assert {b["s"] for b in actions(list(offered.messages), Postback.BOOK)} == {D.id}
    assert "【訓練】" in shown(offered)
    booked = run(talk.on_book, desk, joined.chat, s=D.id, w=T0.isoformat())
    assert "予約しました" in booked.messages[0]["text"] and "【訓練】" in shown(booked)
    near = run(talk.on_location, desk, joined.chat, kind=Kind.LOCATION, point=Point(33.5, 132.5))
    assert D.id not in {b["s"] for b in actions(list(near.messages), Postback.BOOK)}
    left = run(talk.on_drill_leave, desk, joined.chat)
    assert not left.chat.drill_opt_in and "届きません" in left.messages[0]["text"]
    english = run(talk.on_drill, replace(desk, drilling=False), replace(joined.chat, language="en"))
    assert english.messages[0]["text"] == "No drill is running now."
