"""The routing table: every event kind, postback action and intent has its handler."""

from __future__ import annotations

import pytest

from server.line.events import Kind, Point, ResidentEvent
from server.line.messages import CANCEL_WORDS, CHARGE_WORDS, STATUS_WORDS, Postback, postback_data
from server.line.prefill import poster_message
from server.line.routes import ROUTES, Intent, Routed, intent_of, route


def test_every_kind_action_and_intent_has_a_handler() -> None:
    wanted = {*Postback, *Intent, *(k for k in Kind if k not in (Kind.TEXT, Kind.POSTBACK))}
    assert set(ROUTES) == wanted
    assert all(handler.__name__.startswith("on_") for handler in ROUTES.values())


@pytest.mark.parametrize(
    ("text", "routed"),
    [
        ("充電", Routed(Intent.CHARGE, {}, "ja")),
        ("  Charge! ", Routed(Intent.CHARGE, {}, "en")),
        ("ＳＴＡＴＵＳ", Routed(Intent.STATUS, {}, "en")),  # full-width
        ("予約確認。", Routed(Intent.STATUS, {}, "ja")),
        ("キャンセル", Routed(Intent.CANCEL, {}, "ja")),
        ("English", Routed(Intent.ENGLISH, {"l": "en"}, "en")),
        ("日本語", Routed(Intent.JAPANESE, {"l": "ja"}, "ja")),
        ("help", Routed(Intent.HELP, {}, "en")),
        (poster_message("ozu-07"), Routed(Intent.POSTER, {"station": "ozu-07"})),
        ("充電予約\u3000ozu-07", Routed(Intent.POSTER, {"station": "ozu-07"})),
        ("大洲駅", Routed(Intent.PLACE, {"query": "大洲駅"})),
    ],
)
def test_intents(text: str, routed: Routed) -> None:
    assert intent_of(text) == routed


def test_the_menu_sends_words_the_table_knows() -> None:
    for words, intent in ((CHARGE_WORDS, Intent.CHARGE), (STATUS_WORDS, Intent.STATUS),
                          (CANCEL_WORDS, Intent.CANCEL)):  # fmt: skip
        for lang, word in words.items():
            assert intent_of(word) == Routed(intent, {}, lang)


def event(kind: Kind, text: str = "") -> ResidentEvent:
    return ResidentEvent("e", "U1", kind, 0, text=text, point=Point(1.0, 2.0))


def test_events_route_by_kind_postback_action_or_text() -> None:
    assert route(event(Kind.LOCATION)) == Routed(Kind.LOCATION)
    assert route(event(Kind.FOLLOW)) == Routed(Kind.FOLLOW)
    data = postback_data(Postback.BOOK, s="ozu-01", w="2026-12-03T04:30:00+00:00")
    assert route(event(Kind.POSTBACK, data)) == Routed(
        Postback.BOOK, {"s": "ozu-01", "w": "2026-12-03T04:30:00+00:00"}
    )
    assert route(event(Kind.POSTBACK, "a=gone-action")) == Routed(Kind.OTHER)
    assert route(event(Kind.TEXT, "cancel")) == Routed(Intent.CANCEL, {}, "en")


def test_drill_words_in_both_languages_route_to_the_drill_handlers() -> None:
    assert intent_of("訓練参加").key is Intent.DRILL_JOIN
    assert intent_of("Join drill").key is Intent.DRILL_JOIN
    assert intent_of("訓練不参加").key is Intent.DRILL_LEAVE
    assert intent_of("leave drill").language == "en"
    assert intent_of("訓練").key is Intent.DRILL


def test_registration_words_in_both_languages_route_to_the_registration_handlers() -> None:
    assert intent_of("登録") == Routed(Intent.REGISTER, {}, "ja")
    assert intent_of("Register") == Routed(Intent.REGISTER, {}, "en")
    assert intent_of("登録確認") == Routed(Intent.REGISTRATION, {}, "ja")
    assert intent_of("My registration").key is Intent.REGISTRATION
    assert intent_of("登録削除") == Routed(Intent.UNREGISTER, {}, "ja")
    assert intent_of("delete registration") == Routed(Intent.UNREGISTER, {}, "en")
    assert ROUTES[Intent.PLACE].__module__ == "server.line.registration"  # answers while asked
    assert intent_of("肱南").key is Intent.PLACE
