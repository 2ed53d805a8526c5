"""Registering a district and situation on LINE, pure but for `Desk` (as the conversation).

"登録"/"register" -> consent first, in plain words (what is kept, why, deletable at any
time), yes or no -> municipality (those with stations) -> district (the registry's list;
skipped when it has none) -> where they stay -> an optional need. Each answer is a quick
reply that sends its words, so a typed answer works the same (a list longer than 13);
the open question is `Chat.step`, the answers so far `Chat.step_data`, and nothing is
stored before the last one. "登録確認" shows it; "登録削除" deletes the row at once. A
need is stored as `need_requested`: a request for staff to confirm, never a grant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from server.line import conversation as talk
from server.line import messages
from server.line.conversation import Ask, Registration, Reply

STEP_CONSENT: Final = "register_consent"
STEP_MUNICIPALITY: Final = "register_municipality"
STEP_DISTRICT: Final = "register_district"
STEP_STAY: Final = "register_stay"
STEP_NEED: Final = "register_need"
STEPS: Final = frozenset({STEP_CONSENT, STEP_MUNICIPALITY, STEP_DISTRICT, STEP_STAY, STEP_NEED})
STAYS: Final = ("shelter", "home", "relatives", "car")
NEEDS: Final = ("medical_device", "care", "none")
NO_NEED: Final = "none"


async def on_register(ask: Ask) -> Reply:
    """Consent first: what is kept and why, yes or no (registered already: a change)."""
    question = messages.choices(messages.text("register_consent", ask.lang),
                                [_label("yes", ask), _label("no", ask)])  # fmt: skip
    return ask.reply(question, step=STEP_CONSENT, step_data={})


async def on_registration(ask: Ask) -> Reply:
    """ "登録確認": what is registered (the open question stays open)."""
    found = await ask.desk.registration(ask.chat.user_id)
    if found is None:
        return ask.reply(messages.said("registration_none", ask.lang))
    return ask.reply(_shown(ask, found))


async def on_unregister(ask: Ask) -> Reply:
    """ "登録削除": the row is deleted at once, a registration under way dropped too."""
    gone = await ask.desk.unregister(ask.chat.user_id)
    key = "unregistered" if gone else "registration_none"
    if ask.chat.step in STEPS:
        return ask.reply(messages.said(key, ask.lang), step=None, step_data={})
    return ask.reply(messages.said(key, ask.lang))


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
        return _stay(ask, answer)
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
    return ask.reply(_question(ask, body, names), step=STEP_MUNICIPALITY, step_data={})


async def _municipality(ask: Ask, answer: str) -> Reply:
    found = _match(answer, await ask.desk.municipalities())
    if found is None:
        return await _ask_municipality(ask, "not_a_choice", answer=answer[:40])
    districts = await ask.desk.districts(found)
    if not districts:
        return _ask_stay(ask, {"m": found, "d": None})
    body = messages.text("ask_district", ask.lang, municipality=found)
    return ask.reply(_question(ask, body, districts), step=STEP_DISTRICT, step_data={"m": found})


async def _district(ask: Ask, answer: str) -> Reply:
    municipality = str(ask.chat.step_data.get("m", ""))
    districts = await ask.desk.districts(municipality)
    found = _match(answer, districts)
    if found is None:
        body = messages.text("not_a_choice", ask.lang, answer=answer[:40])
        return ask.reply(_question(ask, body, districts))
    return _ask_stay(ask, {"m": municipality, "d": found})


def _ask_stay(ask: Ask, data: dict[str, str | None], key: str = "ask_stay") -> Reply:
    body = messages.text(key, ask.lang, answer=ask.params.get("query", "")[:40])
    stays = [_label(f"stay_{s}", ask) for s in STAYS]
    return ask.reply(_question(ask, body, stays), step=STEP_STAY, step_data=data)


def _stay(ask: Ask, answer: str) -> Reply:
    stay = _code(answer, "stay_", STAYS)
    if stay is None:
        return _ask_stay(ask, dict(ask.chat.step_data), "not_a_choice")
    needs = [_label(f"need_{n}", ask) for n in NEEDS]
    body = messages.text("ask_need", ask.lang)
    data = {**ask.chat.step_data, "s": stay}
    return ask.reply(_question(ask, body, needs), step=STEP_NEED, step_data=data)


async def _need(ask: Ask, answer: str) -> Reply:
    need = _code(answer, "need_", NEEDS)
    if need is None:
        body = messages.text("not_a_choice", ask.lang, answer=answer[:40])
        return ask.reply(_question(ask, body, [_label(f"need_{n}", ask) for n in NEEDS]))
    data = ask.chat.step_data
    registration = Registration(
        ask.chat.user_id, str(data["m"]), data.get("d"), str(data["s"]),
        None if need == NO_NEED else need,
    )  # fmt: skip
    await ask.desk.register(registration)
    stored = await ask.desk.registration(ask.chat.user_id) or registration  # with its reference
    done = messages.text_message(messages.text("registered", ask.lang))
    return ask.reply(done, _shown(ask, stored), step=None, step_data={})


def _shown(ask: Ask, found: Registration) -> messages.Message:
    need = found.need_requested or NO_NEED
    body = messages.text(
        "registration", ask.lang, municipality=found.municipality,
        district=found.district or _label("no_district", ask),
        stay=_label(f"stay_{found.stay}", ask), need=_label(f"need_{need}", ask),
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


def _code(answer: str, prefix: str, codes: Sequence[str]) -> str | None:
    """The code whose label, in either language, the answer is."""
    return next((code for code in codes if _says(answer, f"{prefix}{code}")), None)
