"""What residents read of announcements: the announcement itself as LINE renders it, and the
answers to 「お知らせ」/"news" in the chat. Pure, as `server.line.messages`, whose builders
(a text with the menu) it uses; a drill's announcement is marked 【訓練】/[DRILL] as every
drill message is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final
from zoneinfo import ZoneInfo

from server.announcements.audience import Sent
from server.line import messages
from server.line.messages import Message

MAX_TEXT: Final = 2000
"""An announcement's text in one language: well within LINE's 5,000 with its heading."""
SHOWN: Final = 3
"""Announcements a resident is shown when they ask: the newest."""

HEADINGS: Final = {
    ("ja", False): "【お知らせ】{municipality}",
    ("en", False): "[Announcement] {municipality}",
    ("ja", True): "【訓練】【お知らせ】{municipality}",
    ("en", True): "[DRILL] [Announcement] {municipality}",
}
TEXTS: Final = {
    "unregistered": {
        "ja": "お知らせは、登録した地区に届きます。まだ登録がありません。「登録」と送って、"
        "地区と今いる場所を登録してください。",
        "en": "Announcements go to the district you registered, and you have not registered "
        "yet. Send “register” to register your district and where you stay.",
    },
    "none": {
        "ja": "{municipality}{district}へのお知らせは、まだありません。",
        "en": "There are no announcements for {district}{municipality} yet.",
    },
    "latest": {
        "ja": "{municipality}{district}への最新のお知らせ:",
        "en": "The latest announcements for {district}{municipality}:",
    },
}


def announcement(text: str, lang: str, municipality: str, *, drill: bool) -> Message:
    """The announcement as a recipient reads it: the heading, then the operator's text."""
    heading = HEADINGS[lang, drill].format(municipality=municipality)
    return messages.text_message(f"{heading}\n{text}")


def _where(lang: str, municipality: str, district: str | None) -> dict[str, str]:
    if district is None:
        return {"municipality": municipality, "district": ""}
    if lang == "ja":
        return {"municipality": municipality, "district": f" {district}"}
    return {"municipality": municipality, "district": f"{district}, "}


def unregistered(lang: str) -> Message:
    return messages.text_message(TEXTS["unregistered"][lang], messages.menu_items(lang))


def latest(
    sent: Sequence[Sent], lang: str, municipality: str, district: str | None, tz: ZoneInfo
) -> Message:
    """The newest announcements for the resident's district, each with its date and time."""
    where = _where(lang, municipality, district)
    if not sent:
        return messages.text_message(TEXTS["none"][lang].format(**where), messages.menu_items(lang))
    lines = [TEXTS["latest"][lang].format(**where)]
    for one in sent:
        local = one.sent_at.astimezone(tz)
        mark = ("【訓練】" if lang == "ja" else "[DRILL] ") if one.drill else ""
        body = one.text_ja if lang == "ja" else one.text_en
        at = f"{local.month}/{local.day} {messages.clock_time(one.sent_at, tz)}"
        lines.append(f"\n{at} {mark}{body}")
    return messages.text_message("\n".join(lines), messages.menu_items(lang))
