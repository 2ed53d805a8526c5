"""Registering a district and situation on LINE, pure but for `Desk` (as the conversation).

"登録"/"register" -> consent first, in plain words (what is kept, why, deletable at any
time), yes or no -> municipality (those with stations) -> district (the registry's list;
skipped when it has none) -> where they stay (at a shelter: which one, unless the chat
came from a station's poster, whose shelter it is) -> an optional need. Each answer is a
quick reply that sends its words, so a typed answer works the same (a list longer than 13;
a shelter's name as `find_stations` reads it); the open question is `Chat.step`, the
answers so far `Chat.step_data`, and nothing is stored before the last one. "登録確認" shows
it; "登録削除" deletes the row at once. A need is stored as `need_requested`: a request for
staff to confirm, never a grant. The shelter is its station's id: announcements to a
shelter reach the residents registered there (`server.announcements.audience`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from server.announcements.audience import STAYS
from server.line import conversation as talk
from server.line import messages
from server.line.conversation import Ask, Registration, Reply
from server.line.stations import StationInfo

STEP_CONSENT: Final = "register_consent"
STEP_MUNICIPALITY: Final = "register_municipality"
STEP_DISTRICT: Final = "register_district"
STEP_STAY: Final = "register_stay"
STEP_SHELTER: Final = "register_shelter"
STEP_NEED: Final = "register_need"
STEPS: Final = frozenset({STEP_CONSENT, STEP_MUNICIPALITY, STEP_DISTRICT, STEP_STAY,
                          STEP_SHELTER, STEP_NEED})  # fmt: skip
NEEDS: Final = ("medical_device", "care", "none")
NO_NEED: Final = "none"
SHELTER: Final = "shelter"
SHELTERS_OFFERED: Final = messages.MAX_QUICK_REPLIES - 2
"""Shelters as quick replies, beside "not listed" and "stop"; any other is typed."""


async def on_register(ask: Ask) -> Reply:
    """Consent first: what is kept and why, yes or no (registered already: a change)."""
    question = messages.choices(messages.text("register_consent", ask.lang),
                                [_label("yes", ask), _label("no", ask)])  # fmt: skip
    return ask.reply(question, step=STEP_CONSENT, step_data=talk.poster_seen(ask))


async def on_registration(ask: Ask) -> Reply:
    """ "登録確認": what is registered (the open question stays open)."""
    found = await ask.desk.registration(ask.chat.user_id)
    if found is None:
        return ask.reply(messages.said("registration_none", ask.lang))
    return ask.reply(await _shown(ask, found))


async def on_unregister(ask: Ask) -> Reply:
    """ "登録削除": the row is deleted at once, a registration under way dropped too. An
    announcement batch already pending keeps the resident: it was decided when sent
    (docs/operations.md, Send announcements); sent, its user ids are emptied. The poster
    scanned is forgotten too: nothing is left to register a shelter from."""
    gone = await ask.desk.unregister(ask.chat.user_id)
    key = "unregistered" if gone else "registration_none"
    if ask.chat.step in STEPS:
        return ask.reply(messages.said(key, ask.lang), step=None, step_data={})
    rest = {k: v for k, v in ask.chat.step_data.items() if k != talk.POSTER_SEEN}
    return ask.reply(messages.said(key, ask.lang), step_data=rest)


async def on_typed(ask: Ask) -> Reply:
    """Typed text with no command word: an answer while registering, else a place name."""
    step = ask.chat.step
    if step not in STEPS:
        return await talk.on_place(ask)
    answer = ask.params["query"]
    if step != STEP_CONSENT and _says(answer, "stop"):
        return ask.reply(messages.said("register_stopped", ask.lang), step=None, step_data={})
    if step == STEP_CONSENT:
        return await _consented(ask, answer)
    if step == STEP_MUNICIPALITY:
        return await _municipality(ask, answer)
    if step == STEP_DISTRICT:
        return await _district(ask, answer)
    if step == STEP_STAY:
        return await _stay(ask, answer)
    if step == STEP_SHELTER:
        return await _shelter(ask, answer)
    return await _need(ask, answer)


async def _consented(ask: Ask, answer: str) -> Reply:
    if _says(answer, "no"):
        return ask.reply(messages.said("register_declined", ask.lang), step=None, step_data={})
    if not _says(answer, "yes"):
        return await on_register(ask)
    return await _ask_municipality(ask, "ask_municipality")


async def _ask_municipality(ask: Ask, key: str, **fields: str) -> Reply:
    names = await ask.desk.municipalities()
    body = messages.text(key, ask.lang, **fields)
    if key != "ask_municipality":
        body = f"{body}\n{messages.text('ask_municipality', ask.lang)}"
    return ask.reply(_question(ask, body, names), step=STEP_MUNICIPALITY,
                     step_data=talk.poster_seen(ask))  # fmt: skip


async def _municipality(ask: Ask, answer: str) -> Reply:
    found = _match(answer, await ask.desk.municipalities())
    if found is None:
        return await _ask_municipality(ask, "not_a_choice", answer=answer[:40])
    districts = await ask.desk.districts(found)
    if not districts:
        return _ask_stay(ask, {**talk.poster_seen(ask), "m": found, "d": None})
    body = messages.text("ask_district", ask.lang, municipality=found)
    data = {**talk.poster_seen(ask), "m": found}
    return ask.reply(_question(ask, body, districts), step=STEP_DISTRICT, step_data=data)


async def _district(ask: Ask, answer: str) -> Reply:
    municipality = str(ask.chat.step_data.get("m", ""))
    districts = await ask.desk.districts(municipality)
    found = _match(answer, districts)
    if found is None:
        body = messages.text("not_a_choice", ask.lang, answer=answer[:40])
        return ask.reply(_question(ask, body, districts))
    return _ask_stay(ask, {**talk.poster_seen(ask), "m": municipality, "d": found})


def _ask_stay(ask: Ask, data: dict[str, str | None], key: str = "ask_stay") -> Reply:
    body = messages.text(key, ask.lang, answer=ask.params.get("query", "")[:40])
    stays = [_label(f"stay_{s}", ask) for s in STAYS]
    return ask.reply(_question(ask, body, stays), step=STEP_STAY, step_data=data)


async def _stay(ask: Ask, answer: str) -> Reply:
    stay = _code(answer, "stay_", STAYS)
    if stay is None:
        return _ask_stay(ask, dict(ask.chat.step_data), "not_a_choice")
    data = {**ask.chat.step_data, "s": stay}
    if stay != SHELTER:
        return _ask_need(ask, data)
    poster = await ask.desk.station(str(data.get(talk.POSTER_SEEN, "")))
    if poster is not None and poster.drill_id is None:  # came by its QR: that shelter
        return _ask_need(ask, {**data, "st": poster.id})
    return await _ask_shelter(ask, data, "ask_shelter")


async def _ask_shelter(ask: Ask, data: dict[str, Any], key: str) -> Reply:
    shelters = await ask.desk.shelters(str(data["m"]))
    names = [s.name(ask.lang) for s in shelters[:SHELTERS_OFFERED]]
    body = messages.text(key, ask.lang, answer=ask.params.get("query", "")[:40])
    if key != "ask_shelter":
        body = f"{body}\n{messages.text('ask_shelter', ask.lang)}"
    question = _question(ask, body, [*names, _label("shelter_unlisted", ask)])
    return ask.reply(question, step=STEP_SHELTER, step_data=data)


async def _shelter(ask: Ask, answer: str) -> Reply:
    """The shelter tapped or typed: one of the municipality's by name (either language) or
    id, else the one station a typed name finds; "not listed" registers none."""
    data = dict(ask.chat.step_data)
    if _says(answer, "shelter_unlisted"):
        return _ask_need(ask, {**data, "st": None})
    shelters = await ask.desk.shelters(str(data.get("m", "")))
    found = [s for s in shelters if answer in _names(s)]
    if not found:
        found = [s for s in await ask.desk.find(answer) if s.drill_id is None]
    if len(found) != 1:
        return await _ask_shelter(ask, data, "not_a_choice")
    return _ask_need(ask, {**data, "st": found[0].id})


def _ask_need(ask: Ask, data: dict[str, Any]) -> Reply:
    needs = [_label(f"need_{n}", ask) for n in NEEDS]
    body = messages.text("ask_need", ask.lang)
    return ask.reply(_question(ask, body, needs), step=STEP_NEED, step_data=data)


async def _need(ask: Ask, answer: str) -> Reply:
    need = _code(answer, "need_", NEEDS)
    if need is None:
        body = messages.text("not_a_choice", ask.lang, answer=answer[:40])
        return ask.reply(_question(ask, body, [_label(f"need_{n}", ask) for n in NEEDS]))
    data = ask.chat.step_data
    shelter = data.get("st") if data["s"] == SHELTER else None
    registration = Registration(
        ask.chat.user_id, str(data["m"]), data.get("d"), str(data["s"]),
        None if need == NO_NEED else need, shelter,
    )  # fmt: skip
    await ask.desk.register(registration)
    stored = await ask.desk.registration(ask.chat.user_id) or registration  # with its reference
    done = messages.text_message(messages.text("registered", ask.lang))
    return ask.reply(done, await _shown(ask, stored), step=None, step_data={})


async def _shown(ask: Ask, found: Registration) -> messages.Message:
    need = found.need_requested or NO_NEED
    stay = _label(f"stay_{found.stay}", ask)
    shelter = await ask.desk.station(found.station_id) if found.station_id else None
    if shelter is not None:
        stay = messages.label("stay_at", ask.lang, stay=stay, shelter=shelter.name(ask.lang))
    body = messages.text(
        "registration", ask.lang, municipality=found.municipality,
        district=found.district or _label("no_district", ask),
        stay=stay, need=_label(f"need_{need}", ask),
    )  # fmt: skip
    if found.reference:
        reference = messages.text("registration_reference", ask.lang, reference=found.reference)
        body = f"{body}\n{reference}"
    return messages.text_message(body, messages.menu_items(ask.lang))


def _question(ask: Ask, body: str, options: Sequence[str]) -> messages.Message:
    """The question, its answers as quick replies and "stop" (within LINE's 13)."""
    shown = list(options[: messages.MAX_QUICK_REPLIES - 1])
    return messages.choices(body, [*shown, _label("stop", ask)])


def _label(key: str, ask: Ask) -> str:
    return messages.label(key, ask.lang)


def _says(answer: str, key: str) -> bool:
    """The answer is the label `key` in either language."""
    return answer in {messages.normalised(v) for v in messages.LABELS[key].values()}


def _match(answer: str, names: Sequence[str]) -> str | None:
    """The name the answer gives (as typed or tapped), None for none of them."""
    return next((n for n in names if messages.normalised(n) == answer), None)


def _names(station: StationInfo) -> set[str]:
    """A shelter's id and names as an answer reads them."""
    return {messages.normalised(n) for n in (station.id, station.name_ja, station.name_en) if n}


def _code(answer: str, prefix: str, codes: Sequence[str]) -> str | None:
    """The code whose label, in either language, the answer is."""
    return next((code for code in codes if _says(answer, f"{prefix}{code}")), None)
