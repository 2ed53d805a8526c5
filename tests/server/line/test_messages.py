"""The message builders: what residents read, within LINE's limits, valid for line-bot-sdk."""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from linebot.v3.messaging import ReplyMessageRequest

from server.booking.ranking import Option
from server.booking.views import BookingView
from server.line import messages
from server.line.messages import Postback, postback_data, read_postback
from server.line.stations import StationInfo
from tests.server.line.conftest import postbacks

TZ = ZoneInfo("Asia/Tokyo")
T0 = datetime(2026, 12, 3, 4, 30, tzinfo=UTC)  # 13:30 in Tokyo
STATION = StationInfo("ozu-01", "大洲市民会館", "Ozu Civic Hall", "愛媛県大洲市大洲690-1",
                      33.5065, 132.5447, 30)  # fmt: skip
LONG = StationInfo("long-" + "x" * 59, "長" * 200, "L" * 200, "住所" * 150, 33.5, 132.5, 30)


def booking(station: StationInfo = STATION) -> BookingView:
    return BookingView(
        id="b" * 32, resident_id="line:U1", station_id=station.id, window_start=T0,
        window_end=T0 + timedelta(minutes=30), unit_pk=1, port=3, status="active",
        ticket_code="K7Q2", created_at=T0, updated_at=T0, moved_from_id=None,
        place="battery 1 (rs485-1.1) port 3",
    )  # fmt: skip


def option(station: StationInfo = STATION, minutes: int = 0) -> Option:
    return Option(station.id, T0 + timedelta(minutes=minutes), 7.4, 3.0, 17.8, 2)


def valid(*built: dict[str, Any]) -> None:
    """line-bot-sdk's own request model takes them, and they keep LINE's size limits."""
    request = ReplyMessageRequest.from_dict({"replyToken": "t", "messages": list(built)})
    assert request is not None and len(request.messages) == len(built) <= 5
    for message in built:
        if message["type"] == "flex":
            contents = message["contents"]
            bubbles = contents["contents"] if contents["type"] == "carousel" else [contents]
            assert len(bubbles) <= 12
            for bubble in bubbles:
                assert len(json.dumps(bubble, ensure_ascii=False).encode()) <= 30_000
        items = message.get("quickReply", {}).get("items", [])
        assert len(items) <= 13
        assert all(len(item["action"]["label"]) <= 20 for item in items)
        assert all(len(data) <= 300 for data in postbacks(message))
        assert 0 < len(message.get("altText", message.get("text", ""))) <= 1500


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_options_carousel_is_valid_and_books_each_window(lang: str) -> None:
    carousel = messages.options_carousel(
        [option(), option(minutes=30), option(LONG)], {STATION.id: STATION, LONG.id: LONG},
        lang, TZ,
    )  # fmt: skip
    valid(carousel)
    bubbles = carousel["contents"]["contents"]
    assert len(bubbles) == 3
    shown = json.dumps(bubbles[0], ensure_ascii=False)
    assert STATION.name(lang) in shown
    assert "12/3 13:30" in shown and "14:00" in shown  # Tokyo, 24-hour
    assert ("徒歩 7分" if lang == "ja" else "7 min walk") in shown
    assert "google.com/maps" in shown
    decoded = [read_postback(d) for b in bubbles for d in postbacks(b)]
    assert [(p.action, p.params["s"]) for p in decoded if p] == [
        (Postback.BOOK, STATION.id), (Postback.BOOK, STATION.id), (Postback.BOOK, LONG.id)
    ]  # fmt: skip
    assert decoded[1] is not None
    assert datetime.fromisoformat(decoded[1].params["w"]) == T0 + timedelta(minutes=30)


def test_a_carousel_never_exceeds_twelve_bubbles() -> None:
    many = [option(minutes=30 * i) for i in range(20)]
    carousel = messages.options_carousel(many, {STATION.id: STATION}, "ja", TZ)
    valid(carousel)
    assert len(carousel["contents"]["contents"]) == 12


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_ticket_names_code_station_address_window_and_what_to_bring(lang: str) -> None:
    ticket = messages.ticket_with_menu(booking(), STATION, lang, TZ)
    valid(ticket)
    shown = json.dumps(ticket, ensure_ascii=False)
    bring = "充電ケーブル" if lang == "ja" else "charging cable"
    port = "電池1 ポート3" if lang == "ja" else "battery 1, port 3"
    for part in ("K7Q2", STATION.name(lang), STATION.address, "13:30", "14:00", port, bring):
        assert part in shown
    assert "google.com/maps" in shown
    assert "K7Q2" in ticket["altText"]


def test_residents_read_the_port_in_their_language_without_the_bus_address() -> None:
    crews = "battery 2 (rs485-1.2) port 3"
    assert messages.resident_place(crews, "ja") == "電池2 ポート3"
    assert messages.resident_place(crews, "en") == "battery 2, port 3"
    assert messages.resident_place("port 3", "ja") == "port 3"  # a battery unmapped since


def test_a_long_ticket_stays_within_limits() -> None:
    valid(messages.ticket_bubble(booking(LONG), LONG, "en", TZ))


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_texts_with_quick_replies_are_valid(lang: str) -> None:
    ask = messages.ask_location(lang)
    offer = messages.offer_change(booking(), LONG, T0 + timedelta(hours=1), lang, TZ)
    valid(messages.greeting(lang), ask, offer, messages.said("hint", lang))
    assert ask["quickReply"]["items"][0]["action"]["type"] == "location"
    actions = [read_postback(d) for d in postbacks(offer)]
    assert [a.action for a in actions if a] == [Postback.CHANGE, Postback.STATUS, Postback.CANCEL]


def test_every_text_has_both_languages_and_its_fields() -> None:
    for key, versions in messages.TEXTS.items():
        assert set(versions) == {"ja", "en"}, key
        fields = [set(_fields(v)) for v in versions.values()]
        assert fields[0] == fields[1], key


def _fields(template: str) -> list[str]:
    return [name for _lit, name, _spec, _conv in string.Formatter().parse(template) if name]


def test_postback_data_round_trips_and_is_bounded() -> None:
    data = postback_data(Postback.CHANGE, b="b" * 32, s="s" * 64, w=T0.isoformat())
    assert read_postback(data) == messages.PostbackRequest(
        Postback.CHANGE, {"b": "b" * 32, "s": "s" * 64, "w": T0.isoformat()}
    )
    with pytest.raises(ValueError, match="300"):
        postback_data(Postback.BOOK, s="x" * 300)
    assert read_postback("a=nothing") is None
    assert read_postback("garbage") is None


def test_language_of_line_settings() -> None:
    assert [messages.language_of(x) for x in ("en", "en-US", "ja", None, "ko")] == [
        "en", "en", "ja", "ja", "ja"
    ]  # fmt: skip
