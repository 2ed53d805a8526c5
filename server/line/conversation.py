"""The resident's conversation: one handler per thing a resident can ask, pure but for `Desk`.

A handler gets an `Ask` (the event, the resident's `Chat` state, the `Desk` it may consult
or act through, and the parameters its route read) and returns a `Reply`: the messages to
send (at most 5, LINE's limit for one reply) and the chat state to keep. It never touches
the database, the outbox or LINE: the bot (`server.line.bot`) stores the state and enqueues
the messages in one transaction, and tests call handlers with a fake desk.

The flow: "充電"/"charge" -> we ask for a location (a location quick reply; a typed station
or place name works too) -> up to 3 ranked options (a Flex carousel with book buttons) ->
the book postback -> a ticket. Status and cancel work at any point; a second booking
attempt shows the booking and offers to change it; anything else gets a short hint.
Registering a district and situation ("登録"/"register") is `server.line.registration`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

from server.announcements.audience import Sent
from server.booking.ranking import Option
from server.booking.views import BookingView
from server.errors import Conflict, Invalid, NotFound
from server.line import messages
from server.line.events import ResidentEvent
from server.line.messages import Message
from server.line.stations import StationInfo

log = logging.getLogger(__name__)

OPTIONS: Final = 3
"""Options offered at once: a carousel a resident takes in at a glance."""
LINE_RESIDENT: Final = "line:"
STEP_LOCATION: Final = "location"
"""The open question: where is the resident (a location, or a typed name)."""
POSTER_SEEN: Final = "poster"
"""`Chat.step_data`'s key for the station whose poster the resident scanned last: a
registration "at a shelter" takes that shelter without asking (`server.line.registration`)."""


def resident_id(user_id: str) -> str:
    """The booking service's resident id of a LINE user (its identity is the signed webhook)."""
    return f"{LINE_RESIDENT}{user_id}"


@dataclass(frozen=True, slots=True)
class Chat:
    """Where the conversation with one resident stands (a `line_residents` row)."""

    user_id: str
    language: str = messages.DEFAULT_LANGUAGE
    language_chosen: bool = False
    following: bool = True
    step: str | None = None
    step_data: Mapping[str, Any] = field(default_factory=dict)
    drill_opt_in: bool = False
    """The resident takes part in drills (訓練): only they may book a drill's stations."""


@dataclass(frozen=True, slots=True)
class Reply:
    messages: Sequence[Message]
    chat: Chat


@dataclass(frozen=True, slots=True)
class Offer:
    """Ranked options and the stations they name."""

    options: Sequence[Option]
    stations: Mapping[str, StationInfo]


@dataclass(frozen=True, slots=True)
class Ticket:
    booking: BookingView
    station: StationInfo


@dataclass(frozen=True, slots=True)
class Registration:
    """What a resident registered (`server.line.registration`): the minimum, no name."""

    user_id: str
    municipality: str
    district: str | None
    """None when the municipality lists no districts."""
    stay: str
    """`shelter`, `home`, `relatives` or `car`."""
    need_requested: str | None = None
    """`medical_device` or `care`: what the resident asked for, never a grant."""
    station_id: str | None = None
    """The shelter's station, with `stay` = `shelter` only (None: not one with a station)."""
    reference: str | None = None
    """The code the resident shows at the desk (`server.priority.references`), once stored."""


class Desk(Protocol):
    """What handlers may consult or do: the booking service, seen through plain data."""

    tz: ZoneInfo

    async def options_near(
        self, latitude: float, longitude: float, resident: str | None = None
    ) -> Offer:
        """Up to `OPTIONS` ranked options from a point (used, never stored), as `resident`
        may take them (places held back for priority only if they have it)."""

    async def options_at(self, station_id: str, resident: str | None = None) -> Offer:
        """The station's own free windows, earliest first; no options for an unknown one."""

    async def find(self, text: str) -> Sequence[StationInfo]:
        """Stations a typed text names (id, name, address, municipality)."""

    async def station(self, station_id: str) -> StationInfo | None: ...

    async def drill_stations(self) -> Sequence[StationInfo]:
        """The twins of the drills running now (`server.drills`)."""

    async def active(self, resident: str) -> Ticket | None:
        """The resident's active booking, if any."""

    async def book(
        self, resident: str, station_id: str, window_start: datetime, walk_m: int | None = None
    ) -> Ticket:
        """Raises Conflict (already_booked, window_full), Invalid, NotFound. `walk_m`: the
        option's walk, when the resident booked from a location."""

    async def cancel(self, booking_id: str) -> Ticket:
        """Raises Conflict not_active."""

    async def municipalities(self) -> Sequence[str]:
        """The municipalities that have stations (drills' twins aside), by name."""

    async def districts(self, municipality: str) -> Sequence[str]:
        """The municipality's districts, in the registry's order."""

    async def shelters(self, municipality: str) -> Sequence[StationInfo]:
        """The municipality's stations (the shelters that have one), drills' twins aside."""

    async def registration(self, user_id: str) -> Registration | None: ...

    async def register(self, registration: Registration) -> None:
        """Store it, replacing the resident's earlier one."""

    async def unregister(self, user_id: str) -> bool:
        """Delete the resident's registration (the row, at once); whether there was one."""

    async def announcements(
        self, registration: Registration, drills: bool, count: int
    ) -> Sequence[Sent]:
        """The newest `count` announcements sent to the registration's district and
        situation (drills' only when `drills`), newest first (`server.announcements`)."""


@dataclass(frozen=True, slots=True)
class Ask:
    """One thing a resident asked, as its handler sees it."""

    event: ResidentEvent
    chat: Chat
    desk: Desk
    params: Mapping[str, str] = field(default_factory=dict)
    """What the route read: a postback's parameters, the station of a poster's message,
    the typed query."""

    @property
    def lang(self) -> str:
        return self.chat.language

    @property
    def resident(self) -> str:
        return resident_id(self.chat.user_id)

    def reply(self, *sent: Message, **changes: Any) -> Reply:
        """The reply: these messages, and the chat with `changes` (step=..., ...)."""
        chat = dataclasses.replace(self.chat, **changes) if changes else self.chat
        return Reply(sent, chat)


Handler = Callable[[Ask], Awaitable[Reply]]


# -- following ---------------------------------------------------------------------------


async def on_follow(ask: Ask) -> Reply:
    """A new (or returning) friend: how to use it, and the menu."""
    return ask.reply(messages.greeting(ask.lang), following=True, step=None, step_data={})


async def on_unfollow(ask: Ask) -> Reply:
    """Blocked: nothing can be sent; what was pending is forgotten."""
    return ask.reply(following=False, step=None, step_data={})


# -- finding a window ----------------------------------------------------------------------


async def on_charge(ask: Ask) -> Reply:
    """Where are you? (a location quick reply; a typed name works too)."""
    return ask.reply(messages.ask_location(ask.lang), step=STEP_LOCATION)


async def on_location(ask: Ask) -> Reply:
    """A location: the nearest options. One read back after a crash has no point: ask again."""
    point = ask.event.point
    if point is None:
        return ask.reply(messages.ask_location(ask.lang, "location_again"), step=STEP_LOCATION)
    offer = await ask.desk.options_near(point.latitude, point.longitude, ask.resident)
    return _offered(ask, offer, messages.said("no_options", ask.lang))


async def on_poster(ask: Ask) -> Reply:
    """A station poster's QR message (`充電予約 {station}`): that station's windows, and the
    station kept in the chat (`POSTER_SEEN`) for a registration at its shelter."""
    station = await ask.desk.station(ask.params["station"])
    if station is None:
        text = messages.text("place_unknown", ask.lang, query=ask.params["station"])
        return ask.reply(_location_question(ask, text), step=STEP_LOCATION)
    seen = {**ask.chat.step_data, POSTER_SEEN: station.id}
    return await _at_station(
        dataclasses.replace(ask, chat=dataclasses.replace(ask.chat, step_data=seen)), station
    )


async def on_place(ask: Ask) -> Reply:
    """Typed text we have no word for: a station or place name, else a hint.

    One station: its windows. Several (a town's name): the options nearest their middle.
    """
    query = ask.params["query"]
    found = await ask.desk.find(query)
    if not found:
        if ask.chat.step == STEP_LOCATION:
            text = messages.text("place_unknown", ask.lang, query=query[:40])
            return ask.reply(_location_question(ask, text))
        return ask.reply(messages.said("hint", ask.lang))
    if len(found) == 1:
        return await _at_station(ask, found[0])
    latitude = sum(s.latitude for s in found) / len(found)
    longitude = sum(s.longitude for s in found) / len(found)
    offer = await ask.desk.options_near(latitude, longitude, ask.resident)
    return _offered(ask, offer, messages.said("no_options", ask.lang))


async def _at_station(ask: Ask, station: StationInfo) -> Reply:
    offer = await ask.desk.options_at(station.id, ask.resident)
    name = station.name(ask.lang)
    text = messages.text("station_no_options", ask.lang, station=name)
    return _offered(ask, offer, _location_question(ask, text))


def _offered(ask: Ask, offer: Offer, none: Message) -> Reply:
    """The options as a carousel, or `none` when there are none (still asking where)."""
    if not offer.options:
        return ask.reply(none, step=STEP_LOCATION)
    carousel = messages.options_carousel(offer.options[:OPTIONS], offer.stations, ask.lang,
                                         ask.desk.tz)  # fmt: skip
    intro = messages.text_message(messages.text("options", ask.lang))
    return ask.reply(intro, messages.with_menu(carousel, ask.lang), step=STEP_LOCATION)


def _location_question(ask: Ask, text: str) -> Message:
    """`text`, with the location quick reply under it."""
    question = messages.ask_location(ask.lang)
    return {**question, "text": text}


# -- booking -------------------------------------------------------------------------------


async def on_book(ask: Ask) -> Reply:
    """The book button: a ticket; the booking if there is one already, with the choice to
    change it; fresh windows if that one filled or passed."""
    target = _window(ask)
    if target is None:
        return ask.reply(messages.said("hint", ask.lang))
    station_id, start = target
    station = await ask.desk.station(station_id)
    if station is not None and station.drill_id is not None and not ask.chat.drill_opt_in:
        return ask.reply(messages.said("drill_not_joined", ask.lang))
    try:
        ticket = await ask.desk.book(ask.resident, station_id, start, _walk(ask))
    except Conflict as exc:
        if exc.code != "already_booked":
            return await _instead(ask, station_id, "window_full")
        return await _second_attempt(ask, station_id, start)
    except Invalid:
        return await _instead(ask, station_id, "window_gone")
    except NotFound:
        return ask.reply(messages.said("hint", ask.lang))
    return _ticketed(ask, ticket, "booked")


async def on_change(ask: Ask) -> Reply:
    """Change the booking to the window offered: the old place is given up only when the
    new one is taken, else the old window is claimed back."""
    target = _window(ask)
    if target is None:
        return ask.reply(messages.said("hint", ask.lang))
    station_id, start = target
    current = await ask.desk.active(ask.resident)
    if current is None or current.booking.id != ask.params.get("b"):
        return await on_book(ask)  # it was cancelled or moved meanwhile: a plain booking
    old = current.booking
    await ask.desk.cancel(old.id)
    try:
        ticket = await ask.desk.book(ask.resident, station_id, start)
    except (Conflict, Invalid, NotFound):
        try:
            back = await ask.desk.book(ask.resident, old.station_id, old.window_start)
        except (Conflict, Invalid, NotFound):
            return await _instead(ask, station_id, "window_full")
        full = messages.text_message(messages.text("window_full", ask.lang))
        return ask.reply(full, _ticket(ask, back))
    return _ticketed(ask, ticket, "changed")


async def _second_attempt(ask: Ask, station_id: str, start: datetime) -> Reply:
    """Booked already: the booking, and the choice to change it to this window. The same
    window again (a double tap, an event processed twice) is simply its ticket."""
    current = await ask.desk.active(ask.resident)
    wanted = await ask.desk.station(station_id)
    if current is None or wanted is None:  # cancelled meanwhile, or an unknown station
        return ask.reply(messages.said("trouble", ask.lang))
    if current.booking.station_id == station_id and current.booking.window_start == start:
        return _ticketed(ask, current, "booked")
    offer = messages.offer_change(current.booking, wanted, start, ask.lang, ask.desk.tz)
    intro = messages.text_message(messages.text("already_booked", ask.lang))
    ticket = messages.ticket_bubble(current.booking, current.station, ask.lang, ask.desk.tz)
    return ask.reply(intro, ticket, offer, step=None)


async def _instead(ask: Ask, station_id: str, key: str) -> Reply:
    """That window cannot be had (`key` says why): the station's windows now."""
    offer = await ask.desk.options_at(station_id, ask.resident)
    text = messages.text_message(messages.text(key, ask.lang))
    if not offer.options:
        return ask.reply(text, messages.ask_location(ask.lang), step=STEP_LOCATION)
    carousel = messages.options_carousel(offer.options[:OPTIONS], offer.stations, ask.lang,
                                         ask.desk.tz)  # fmt: skip
    return ask.reply(text, messages.with_menu(carousel, ask.lang), step=STEP_LOCATION)


def _walk(ask: Ask) -> int | None:
    """The option's walk in metres a book button carries; None without (or unreadable)."""
    metres = ask.params.get("m", "")
    return int(metres) if metres.isdigit() else None


def _window(ask: Ask) -> tuple[str, datetime] | None:
    """The (station, window start) a button names; None for data we cannot read."""
    try:
        start = datetime.fromisoformat(ask.params["w"])
        return ask.params["s"], start
    except (KeyError, ValueError):
        return None


def _ticket(ask: Ask, ticket: Ticket) -> Message:
    return messages.ticket_with_menu(ticket.booking, ticket.station, ask.lang, ask.desk.tz)


def _ticketed(ask: Ask, ticket: Ticket, key: str) -> Reply:
    """The ticket; the question is closed, the poster scanned is kept (a registration next)."""
    intro = messages.text_message(messages.text(key, ask.lang))
    return ask.reply(intro, _ticket(ask, ticket), step=None, step_data=poster_seen(ask))


def poster_seen(ask: Ask) -> dict[str, str]:
    """The step data that outlives a closed question: the poster scanned, if any."""
    seen = ask.chat.step_data.get(POSTER_SEEN)
    return {POSTER_SEEN: seen} if isinstance(seen, str) else {}


# -- drills (訓練) ---------------------------------------------------------------------------


async def on_drill_join(ask: Ask) -> Reply:
    """ "訓練参加": the resident takes part in drills from now on (and hears of them)."""
    return ask.reply(messages.said("drill_joined", ask.lang), drill_opt_in=True)


async def on_drill_leave(ask: Ask) -> Reply:
    """ "訓練不参加": no drill station is offered to them, no drill message sent."""
    return ask.reply(messages.said("drill_left", ask.lang), drill_opt_in=False)


async def on_drill(ask: Ask) -> Reply:
    """ "訓練": a participant is offered the running drills' stations, earliest window first."""
    if not ask.chat.drill_opt_in:
        return ask.reply(messages.said("drill_not_joined", ask.lang))
    stations = await ask.desk.drill_stations()
    if not stations:
        return ask.reply(messages.said("drill_none", ask.lang))
    offers = [await ask.desk.options_at(s.id, ask.resident) for s in stations]
    options = sorted((o for offer in offers for o in offer.options[:1]),
                     key=lambda o: (o.window_start, o.station_id))  # fmt: skip
    found = Offer(options, {sid: s for offer in offers for sid, s in offer.stations.items()})
    return _offered(ask, found, messages.said("drill_none", ask.lang))


# -- at any point ------------------------------------------------------------------------


async def on_status(ask: Ask) -> Reply:
    """The booking, whatever was asked before (the open question stays open)."""
    current = await ask.desk.active(ask.resident)
    if current is None:
        return ask.reply(messages.said("status_none", ask.lang))
    intro = messages.text_message(messages.text("status", ask.lang))
    return ask.reply(intro, _ticket(ask, current))


async def on_cancel(ask: Ask) -> Reply:
    """Cancel the active booking at once, mid-flow too; the open question is dropped."""
    current = await ask.desk.active(ask.resident)
    if current is None:
        return ask.reply(messages.said("cancel_none", ask.lang), step=None, step_data={})
    booking = current.booking
    try:
        await ask.desk.cancel(booking.id)
    except Conflict:
        return ask.reply(messages.said("cancel_not_now", ask.lang, status=booking.status))
    name = current.station.name(ask.lang)
    window = messages.window_label(booking.window_start, booking.window_end, ask.desk.tz,
                                   ask.lang)  # fmt: skip
    done = messages.said("cancelled", ask.lang, station=name, window=window)
    return ask.reply(done, step=None, step_data={})


async def on_language(ask: Ask) -> Reply:
    """ "English" / "日本語": the resident's choice, kept over their LINE setting."""
    lang = messages.language_of(ask.params.get("l"))
    chat = dataclasses.replace(ask.chat, language=lang, language_chosen=True)
    return Reply([messages.said("language_set", lang)], chat)


async def on_help(ask: Ask) -> Reply:
    """A greeting or a call for help: how to use it."""
    return ask.reply(messages.greeting(ask.lang))


async def on_media(ask: Ask) -> Reply:
    """A sticker or a photo: thanks, and how to book."""
    return ask.reply(messages.said("hint_media", ask.lang))


async def on_other(ask: Ask) -> Reply:
    """Anything we cannot read: a short hint, never silence."""
    return ask.reply(messages.said("hint", ask.lang))
