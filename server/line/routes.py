"""The LINE conversation's one routing table: event kind, postback action or typed intent
to handler, in the manner of `ocpp`'s `@on(Action.X)` but as an explicit literal.

`route` reads an event into a key of `ROUTES` and the parameters its handler needs: a
postback's data (`messages.read_postback`), or a text's intent (`intent_of`: a command word
in either language, a station poster's message, else a place name to look up). A word in
one language also tells which language a resident who never chose one reads.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from server.announcements import chat as announcement_chat
from server.line import conversation as talk
from server.line import registration
from server.line.conversation import Handler
from server.line.events import Kind, ResidentEvent
from server.line.messages import Postback, normalised, read_postback
from server.line.prefill import poster_station


class Intent(StrEnum):
    """What a typed text asks for."""

    CHARGE = "charge"
    STATUS = "status"
    CANCEL = "cancel"
    ENGLISH = "english"
    JAPANESE = "japanese"
    HELP = "help"
    DRILL = "drill"
    DRILL_JOIN = "drill_join"
    DRILL_LEAVE = "drill_leave"
    REGISTER = "register"
    REGISTRATION = "registration"
    UNREGISTER = "unregister"
    ANNOUNCEMENTS = "announcements"
    """「お知らせ」: the newest announcements of the resident's district."""
    POSTER = "poster"
    """`充電予約 {station}`, typed by a station poster's QR code."""
    PLACE = "place"
    """Anything else: an answer while registering (`registration.on_typed`), else perhaps a
    station or place name (`conversation.on_place`)."""


Key = Kind | Postback | Intent

ROUTES: Final[Mapping[Key, Handler]] = {
    Kind.FOLLOW: talk.on_follow,
    Kind.UNFOLLOW: talk.on_unfollow,
    Kind.LOCATION: talk.on_location,
    Kind.MEDIA: talk.on_media,
    Kind.OTHER: talk.on_other,
    Postback.BOOK: talk.on_book,
    Postback.CHANGE: talk.on_change,
    Postback.CANCEL: talk.on_cancel,
    Postback.CHARGE: talk.on_charge,
    Postback.STATUS: talk.on_status,
    Postback.LANGUAGE: talk.on_language,
    Intent.CHARGE: talk.on_charge,
    Intent.STATUS: talk.on_status,
    Intent.CANCEL: talk.on_cancel,
    Intent.ENGLISH: talk.on_language,
    Intent.JAPANESE: talk.on_language,
    Intent.HELP: talk.on_help,
    Intent.DRILL: talk.on_drill,
    Intent.DRILL_JOIN: talk.on_drill_join,
    Intent.DRILL_LEAVE: talk.on_drill_leave,
    Intent.POSTER: talk.on_poster,
    Intent.REGISTER: registration.on_register,
    Intent.REGISTRATION: registration.on_registration,
    Intent.UNREGISTER: registration.on_unregister,
    Intent.ANNOUNCEMENTS: announcement_chat.on_announcements,
    Intent.PLACE: registration.on_typed,
}
"""Every event a resident can send, to the handler that answers it. `Kind.TEXT` and
`Kind.POSTBACK` are not keys: their texts and data are read into intents and actions."""

WORDS: Final[Mapping[str, tuple[Intent, str]]] = {
    **dict.fromkeys(("充電", "充電予約", "じゅうでん", "予約", "予約する", "予約したい"),
                    (Intent.CHARGE, "ja")),
    **dict.fromkeys(("charge", "charging", "book", "booking please", "reserve"),
                    (Intent.CHARGE, "en")),
    **dict.fromkeys(("予約確認", "確認", "予約の確認", "予約状況"), (Intent.STATUS, "ja")),
    **dict.fromkeys(("status", "my booking", "booking", "check"), (Intent.STATUS, "en")),
    **dict.fromkeys(("キャンセル", "取り消し", "取消", "予約取消", "予約キャンセル"),
                    (Intent.CANCEL, "ja")),
    **dict.fromkeys(("cancel", "cancel booking"), (Intent.CANCEL, "en")),
    **dict.fromkeys(("english", "英語", "えいご"), (Intent.ENGLISH, "en")),
    **dict.fromkeys(("日本語", "japanese", "にほんご"), (Intent.JAPANESE, "ja")),
    **dict.fromkeys(("こんにちは", "ヘルプ", "使い方", "はじめまして", "?", "？"),
                    (Intent.HELP, "ja")),
    **dict.fromkeys(("hello", "hi", "help", "how"), (Intent.HELP, "en")),
    **dict.fromkeys(("訓練", "くんれん", "訓練予約"), (Intent.DRILL, "ja")),
    **dict.fromkeys(("drill", "drills"), (Intent.DRILL, "en")),
    **dict.fromkeys(("訓練参加", "訓練に参加", "訓練に参加する"), (Intent.DRILL_JOIN, "ja")),
    **dict.fromkeys(("join drill", "join drills", "drill join"), (Intent.DRILL_JOIN, "en")),
    **dict.fromkeys(("訓練不参加", "訓練をやめる", "訓練参加をやめる"), (Intent.DRILL_LEAVE, "ja")),
    **dict.fromkeys(("leave drill", "leave drills", "drill leave"), (Intent.DRILL_LEAVE, "en")),
    **dict.fromkeys(("登録", "登録する", "地区登録"), (Intent.REGISTER, "ja")),
    **dict.fromkeys(("register", "registration", "change registration"),
                    (Intent.REGISTER, "en")),
    **dict.fromkeys(("登録確認", "登録内容"), (Intent.REGISTRATION, "ja")),
    **dict.fromkeys(("my registration", "show registration"), (Intent.REGISTRATION, "en")),
    **dict.fromkeys(("登録削除", "登録を削除", "登録解除"), (Intent.UNREGISTER, "ja")),
    **dict.fromkeys(("delete registration", "unregister"), (Intent.UNREGISTER, "en")),
    **dict.fromkeys(("お知らせ", "おしらせ", "最新のお知らせ"), (Intent.ANNOUNCEMENTS, "ja")),
    **dict.fromkeys(("news", "announcements", "announcement"), (Intent.ANNOUNCEMENTS, "en")),
}  # fmt: skip
"""Command words (normalised: NFKC, lower case, no outer spaces or 。!.) and the language
they are in."""


@dataclass(frozen=True, slots=True)
class Routed:
    """Where an event goes: the route key, its handler's parameters, and the language the
    words were in (None: they did not say)."""

    key: Key
    params: Mapping[str, str] = field(default_factory=dict)
    language: str | None = None


def intent_of(text: str) -> Routed:
    """What a typed text asks for (pure)."""
    station = poster_station(unicodedata.normalize("NFKC", text))
    if station is not None:  # the poster typed it, in Japanese whoever scanned it
        return Routed(Intent.POSTER, {"station": station})
    word = normalised(text)
    found = WORDS.get(word)
    if found is None:
        return Routed(Intent.PLACE, {"query": word})
    intent, language = found
    if intent is Intent.ENGLISH:
        return Routed(intent, {"l": "en"}, "en")
    if intent is Intent.JAPANESE:
        return Routed(intent, {"l": "ja"}, "ja")
    return Routed(intent, {}, language)


def route(event: ResidentEvent) -> Routed:
    """The route of an event: its kind, its postback action, or its text's intent."""
    if event.kind is Kind.TEXT:
        return intent_of(event.text)
    if event.kind is Kind.POSTBACK:
        request = read_postback(event.text)
        if request is None:
            return Routed(Kind.OTHER)
        return Routed(request.action, request.params)
    return Routed(event.kind)


def handler_of(routed: Routed) -> Handler:
    return ROUTES[routed.key]
