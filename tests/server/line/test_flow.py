"""The whole resident conversation over HTTP with signed webhooks, on both stores, in
Japanese and English: what the bot enqueued for each resident is what they would read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from linebot.v3.messaging import ReplyMessageRequest
from sqlalchemy import select

from server.db.models import Booking, LineEvent, LineResident
from server.line.messages import Postback, postback_data
from server.line.prefill import poster_message
from tests.server.line.conftest import Resident, Sent, actions, event, message

pytestmark = pytest.mark.anyio

WORDS = {
    "ja": {"charge": "充電", "status": "予約確認", "cancel": "キャンセル", "ask": "現在地",
           "booked": "予約しました", "none": "予約はありません", "cancelled": "取り消しました",
           "already": "すでに予約があります", "changed": "予約を変更しました",
           "code": "コード"},
    "en": {"charge": "charge", "status": "status", "cancel": "cancel", "ask": "location",
           "booked": "Booked", "none": "no booking", "cancelled": "cancelled",
           "already": "already have a booking", "changed": "changed", "code": "Code"},
}  # fmt: skip


def bodies(sent: list[Sent]) -> list[list[dict[str, Any]]]:
    return [row.body for row in sent]


def valid(sent: list[Sent]) -> None:
    """Each row is a request line-bot-sdk's model accepts, at most 5 messages."""
    for row in sent:
        assert 1 <= len(row.body) <= 5
        assert ReplyMessageRequest.from_dict({"replyToken": "t", "messages": row.body})


async def active_bookings(app: FastAPI, user_id: str) -> list[Booking]:
    async with app.state.services.db.transaction() as session:
        rows = await session.scalars(
            select(Booking).where(
                Booking.resident_id == f"line:{user_id}", Booking.status == "active"
            )
        )
        return list(rows)


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_book_status_and_cancel_mid_flow_then_book_again(
    app: FastAPI, client: httpx.AsyncClient, lang: str
) -> None:
    words = WORDS[lang]
    resident = Resident(app, client, f"U{lang}flow")
    if lang == "en":
        assert "English" in (await resident.follow())[0].flat()
        switched = await resident.text("English")
        assert "English" in switched[0].texts[0]
    else:
        greeted = await resident.follow()
        assert (
            "充電" in greeted[0].texts[0]
            and greeted[0].reply_token == "reply-" + (resident.sent[-1]["replyToken"].split("-")[1])
        )
    asked = await resident.text(words["charge"])
    assert words["ask"] in asked[0].texts[0]
    location = asked[0].body[0]["quickReply"]["items"][0]["action"]
    assert location["type"] == "location"

    mid = await resident.text(words["status"])  # nothing booked yet, mid-flow
    assert words["none"] in mid[0].texts[0]
    offered = await resident.location()  # the open question is still open
    valid(offered)
    books = actions(bodies(offered), Postback.BOOK)
    assert 1 <= len(books) <= 3
    assert books[0]["s"] == "ozu-01"  # the nearest
    carousel = offered[0].flat()
    assert ("徒歩" if lang == "ja" else "min walk") in carousel and "google.com/maps" in carousel
    start = datetime.fromisoformat(books[0]["w"])

    ticket = await resident.postback(postback_data(Postback.BOOK, **books[0]))
    valid(ticket)
    assert words["booked"] in ticket[0].texts[0]
    [booking] = await active_bookings(app, resident.user_id)
    assert booking.station_id == "ozu-01" and booking.window_start == start
    assert booking.ticket_code in ticket[0].flat() and words["code"] in ticket[0].flat()

    shown = await resident.text(words["status"])
    assert booking.ticket_code in shown[0].flat()

    await resident.text(words["charge"])  # a new flow, then cancel in the middle of it
    cancelled = await resident.text(words["cancel"])
    assert words["cancelled"] in cancelled[0].texts[0]
    assert await active_bookings(app, resident.user_id) == []
    assert words["none"] in (await resident.text(words["status"]))[0].texts[0]
    async with app.state.services.db.transaction() as session:
        chat = await session.get(LineResident, resident.user_id)
        assert chat is not None and chat.language == lang and chat.step is None

    again = await resident.location()  # a location needs no question before it
    rebooked = await resident.postback(
        postback_data(Postback.BOOK, **actions(bodies(again), Postback.BOOK)[0])
    )
    assert words["booked"] in rebooked[0].texts[0]
    assert len(await active_bookings(app, resident.user_id)) == 1


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_a_second_booking_shows_the_first_and_offers_to_change_it(
    app: FastAPI, client: httpx.AsyncClient, lang: str
) -> None:
    words = WORDS[lang]
    resident = Resident(app, client, f"U{lang}twice")
    await resident.text(words["charge"])
    offered = await resident.location()
    first, second = actions(bodies(offered), Postback.BOOK)[:2]
    await resident.postback(postback_data(Postback.BOOK, **first))
    [booking] = await active_bookings(app, resident.user_id)
    assert booking.walk_m == int(first["m"])  # the option's walk, kept for the reports

    tapped_again = await resident.postback(postback_data(Postback.BOOK, **first))
    assert words["booked"] in tapped_again[0].texts[0]  # a double tap is the same ticket
    attempt = await resident.postback(postback_data(Postback.BOOK, **second))
    valid(attempt)
    assert words["already"] in attempt[0].texts[0]
    assert booking.ticket_code in attempt[0].flat()
    [change] = actions(bodies(attempt), Postback.CHANGE)
    assert change == {"b": booking.id, "s": second["s"], "w": second["w"]}
    assert [b.id for b in await active_bookings(app, resident.user_id)] == [booking.id]

    changed = await resident.postback(postback_data(Postback.CHANGE, **change))
    assert words["changed"] in changed[0].texts[0]
    [moved] = await active_bookings(app, resident.user_id)
    assert (moved.station_id, moved.window_start.isoformat()) == (second["s"], second["w"])
    assert moved.ticket_code in changed[0].flat()


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_a_typed_station_name_and_a_poster_show_that_station(
    app: FastAPI, client: httpx.AsyncClient, lang: str
) -> None:
    words = WORDS[lang]
    resident = Resident(app, client, f"U{lang}typed")
    if lang == "en":
        await resident.text("English")
    await resident.text(words["charge"])
    name = "大洲市総合体育館" if lang == "ja" else "ozu city general gymnasium"
    typed = await resident.text(name)
    valid(typed)
    found = actions(bodies(typed), Postback.BOOK)
    assert found and {b["s"] for b in found} == {"ozu-02"}  # that station's own windows
    assert len({b["w"] for b in found}) == len(found)

    scanned = await resident.text(poster_message("ozu-01"))
    poster = actions(bodies(scanned), Postback.BOOK)
    assert poster and {b["s"] for b in poster} == {"ozu-01"}
    assert words["ask"] not in scanned[0].texts[0]  # no question: the poster said where
    empty = await resident.text(poster_message("ozu-03"))  # a station without chargers
    assert ("大洲南中学校" if lang == "ja" else "Ozu Minami") in empty[0].texts[0]
    assert actions(bodies(empty), Postback.BOOK) == []
    assert empty[0].body[0]["quickReply"]["items"][0]["action"]["type"] == "location"

    unknown = await resident.text("xyzzy-nowhere")
    assert "xyzzy-nowhere" in unknown[0].texts[0]  # still asking where
    assert unknown[0].body[0]["quickReply"]["items"][0]["action"]["type"] == "location"


async def test_nonsense_media_and_unknown_types_get_a_hint_never_silence(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    resident = Resident(app, client, "Uodd")
    answers = [
        await resident.text("ほげほげ"),
        await resident.send(message(resident.user_id, {"type": "sticker", "packageId": "1",
                                                       "stickerId": "2",
                                                       "stickerResourceType": "STATIC"})),
        await resident.send(message(resident.user_id, {"type": "image",
                                                       "contentProvider": {"type": "line"}})),
        await resident.send(message(resident.user_id, {"type": "poll"})),  # unknown to the SDK
        await resident.send(event(resident.user_id, "somethingNew")),
        await resident.postback("a=unheard-of"),
    ]  # fmt: skip
    for answer in answers:
        valid(answer)
        assert len(answer) == 1 and "充電" in answer[0].texts[0], answer
        assert answer[0].reply_token is not None
    async with app.state.services.db.transaction() as session:
        kinds = list(await session.scalars(
            select(LineEvent.kind).where(LineEvent.user_id == resident.user_id)
            .order_by(LineEvent.received_at, LineEvent.webhook_event_id)))  # fmt: skip
    assert sorted(kinds) == sorted(["text", "media", "media", "other", "other", "postback"])
