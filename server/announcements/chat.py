"""「お知らせ」/"news": a resident reads again the newest announcements of their district.

A handler of the LINE conversation's routing table (`server.line.routes`), pure but for the
desk, as the others: unregistered residents are told to register first (「登録」).
"""

from __future__ import annotations

from server.announcements import messages
from server.announcements.messages import SHOWN
from server.line.conversation import Ask, Reply


async def on_announcements(ask: Ask) -> Reply:
    registration = await ask.desk.registration(ask.chat.user_id)
    if registration is None:
        return ask.reply(messages.unregistered(ask.lang))
    sent = await ask.desk.announcements(registration, ask.chat.drill_opt_in, SHOWN)
    return ask.reply(messages.latest(sent, ask.lang, registration.municipality,
                                     registration.district, ask.desk.tz))  # fmt: skip
