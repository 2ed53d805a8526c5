"""Announcements in the database: drafted and previewed, sent once through the outbox, counted.

An operator drafts an announcement (`create`: the targets are checked against the registry,
the preview computed) and sends it (`send`): in ONE transaction the announcement is marked
sent (only once: a second send is a Conflict), its recipients are read as they are now
(`server.announcements.audience`), their LINE multicast batches are written to the outbox
(`enqueue_multicast`: one row per 500 residents of one language, each with its own retry key)
and the audit log records who sent it, the targets and the counts, never a user id. The
sender (`server.delivery.sender`) delivers the batches under LINE's multicast rate limit;
`deliveries` counts them from the outbox rows (`source` = `announcement:{id}`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.access.operators import Operator
from server.announcements import messages
from server.announcements.audience import (
    STAYS,
    Audience,
    Heard,
    Reach,
    Resident,
    Sent,
    Targets,
    latest,
)
from server.announcements.audience import audience as audience_of
from server.booking.claims import ACTIVE_STATUSES
from server.db.models import (
    Announcement,
    Booking,
    Drill,
    LineResident,
    OutboxMessage,
    ResidentRegistration,
    Station,
)
from server.db.session import Database
from server.delivery.outbox import enqueue_multicast
from server.errors import Conflict, Invalid, NotFound
from server.line.conversation import LINE_RESIDENT, Registration
from server.line.messages import Message
from server.registry.districts import district_names

CHUNK: Final = 900
"""Ids per `IN (...)` (SQLite's parameter limit, with room)."""
HEARD: Final = 50
"""Sent announcements of a municipality looked through for a resident's newest."""


@dataclass(frozen=True, slots=True)
class Draft:
    """What an operator composes."""

    targets: Targets
    text_ja: str
    text_en: str


@dataclass(frozen=True, slots=True)
class AnnouncementView:
    id: int
    targets: Targets
    text_ja: str
    text_en: str
    created_by: str
    created_at: datetime
    sent_by: str | None
    sent_at: datetime | None
    recipients: int | None


@dataclass(frozen=True, slots=True)
class Preview:
    view: AnnouncementView
    audience: Audience
    messages: dict[str, Message]
    """Language -> the message its recipients get."""


@dataclass(frozen=True, slots=True)
class Deliveries:
    """An announcement's delivery so far: batches, and residents by their batch's state."""

    recipients: int
    batches: int
    sent: int
    failed: int
    pending: int


def source_of(announcement_id: int) -> str:
    return f"announcement:{announcement_id}"


def rendered(view: AnnouncementView) -> dict[str, Message]:
    drill = view.targets.drill_id is not None
    municipality = view.targets.municipality
    return {
        "ja": messages.announcement(view.text_ja, "ja", municipality, drill=drill),
        "en": messages.announcement(view.text_en, "en", municipality, drill=drill),
    }


def _targets(row: Announcement) -> Targets:
    return Targets(row.municipality, tuple(row.districts), tuple(row.stays),
                   tuple(row.stations), row.drill_id)  # fmt: skip


def _view(row: Announcement) -> AnnouncementView:
    return AnnouncementView(row.id, _targets(row), row.text_ja, row.text_en, row.created_by,
                            row.created_at, row.sent_by, row.sent_at, row.recipients)  # fmt: skip


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for first in range(0, len(ids), CHUNK):
        yield ids[first : first + CHUNK]


async def read_audience(session: AsyncSession, targets: Targets) -> Audience:
    """The residents the targets reach now, in the caller's transaction."""
    reaches: dict[str, Reach] = {}
    if targets.by_registration:
        query = select(ResidentRegistration.user_id, ResidentRegistration.district,
                       ResidentRegistration.stay).where(
            ResidentRegistration.municipality == targets.municipality)  # fmt: skip
        if targets.districts:
            query = query.where(ResidentRegistration.district.in_(targets.districts))
        if targets.stays:
            query = query.where(ResidentRegistration.stay.in_(targets.stays))
        for user_id, district, stay in await session.execute(query):
            reaches[user_id] = Reach(user_id, district, stay)
    if targets.stations:
        registered = await session.execute(
            select(ResidentRegistration.user_id, ResidentRegistration.station_id).where(
                ResidentRegistration.station_id.in_(targets.stations))
        )  # fmt: skip
        for user_id, at in registered:
            if at is not None:  # matched by `IN`, so never None (the column type allows it)
                reaches.setdefault(user_id, Reach(user_id)).stations.add(at)
        booked = await session.execute(
            select(Booking.resident_id, Booking.station_id).where(
                Booking.station_id.in_(targets.stations), Booking.status.in_(ACTIVE_STATUSES),
                Booking.resident_id.startswith(LINE_RESIDENT),
            )
        )  # fmt: skip
        for resident_id, station_id in booked:
            user_id = resident_id.removeprefix(LINE_RESIDENT)
            reaches.setdefault(user_id, Reach(user_id)).stations.add(station_id)
    residents: dict[str, Resident] = {}
    for ids in _chunks(sorted(reaches)):
        rows = await session.execute(
            select(LineResident.user_id, LineResident.language, LineResident.following,
                   LineResident.drill_opt_in).where(LineResident.user_id.in_(ids))
        )  # fmt: skip
        for user_id, language, following, drill_opt_in in rows:
            residents[user_id] = Resident(language, following, drill_opt_in)
    return audience_of(targets, reaches.values(), residents)


async def checked(session: AsyncSession, targets: Targets) -> None:
    """Invalid, naming the field, for targets the registry does not know."""
    m = targets.municipality
    known = await session.scalar(select(Station.id).where(Station.municipality == m).limit(1))
    names = await district_names(session, m)
    if known is None and not names:
        raise Invalid(f"municipality: no stations or districts in {m!r}", field="municipality")
    if not (targets.districts or targets.stays or targets.stations):
        raise Invalid("districts: choose at least one district, situation (stays) or station",
                      field="districts")  # fmt: skip
    unknown = [d for d in targets.districts if d not in names]
    if unknown:
        raise Invalid(f"districts: not districts of {m}: {', '.join(unknown)}", field="districts")
    odd = [s for s in targets.stays if s not in STAYS]
    if odd:
        raise Invalid(f"stays: {', '.join(odd)}; one of {', '.join(STAYS)}", field="stays")
    here = select(Station.id).where(Station.id.in_(targets.stations), Station.municipality == m)
    found = set(await session.scalars(here))
    missing = [s for s in targets.stations if s not in found]
    if missing:
        raise Invalid(f"stations: not stations of {m}: {', '.join(missing)}", field="stations")
    if targets.drill_id is not None:
        drill = await session.get(Drill, targets.drill_id)
        if drill is None or drill.ended_at is not None or m not in drill.municipalities:
            raise Invalid(f"drill_id: no drill {targets.drill_id} running in {m}",
                          field="drill_id")  # fmt: skip


def _described(view: AnnouncementView, found: Audience) -> dict[str, Any]:
    """The audit entry's detail: targets and counts, no user id."""
    t = view.targets
    return {
        "municipality": t.municipality, "districts": list(t.districts), "stays": list(t.stays),
        "stations": list(t.stations), "drill_id": t.drill_id, "recipients": found.total,
        "languages": found.languages,
        "batches": found.batches, "unfollowed": found.unfollowed,
        "not_in_drill": found.not_in_drill,
    }  # fmt: skip


class Announcements:
    """Made once in the lifespan; `wake` (the outbox sender's) after a send committed."""

    def __init__(
        self, db: Database, clock: Callable[[], datetime], wake: Callable[[], None] | None = None
    ) -> None:
        self._db = db
        self._clock = clock
        self._wake = wake

    async def create(self, draft: Draft, by: Operator) -> Preview:
        where = draft.targets.municipality
        by.require_reach(where, f"an announcement in {where}")
        for field, text in (("text_ja", draft.text_ja), ("text_en", draft.text_en)):
            if not text.strip():
                raise Invalid(f"{field}: the announcement's text is empty", field=field)
        t, now = draft.targets, self._clock()
        async with self._db.transaction() as session:
            await checked(session, t)
            row = Announcement(
                municipality=t.municipality, districts=list(t.districts), stays=list(t.stays),
                stations=list(t.stations), drill_id=t.drill_id, text_ja=draft.text_ja.strip(),
                text_en=draft.text_en.strip(), created_by=by.name, created_at=now,
            )  # fmt: skip
            session.add(row)
            await session.flush()
            view = _view(row)
            found = await read_audience(session, t)
            await audit.record(session, by.name, "announcement.created", source_of(view.id),
                               _described(view, found), at=now)  # fmt: skip
        return Preview(view, found, rendered(view))

    async def preview(self, announcement_id: int, by: Operator) -> Preview:
        async with self._db.transaction() as session:
            view = await self._reachable(session, announcement_id, by)
            found = await read_audience(session, view.targets)
        return Preview(view, found, rendered(view))

    async def send(self, announcement_id: int, by: Operator) -> tuple[AnnouncementView, Deliveries]:
        """Marked sent, its batches in the outbox and the audit entry, all or nothing."""
        now = self._clock()
        async with self._db.transaction() as session:
            view = await self._reachable(session, announcement_id, by)
            claimed = await session.scalar(
                update(Announcement)
                .where(Announcement.id == announcement_id, Announcement.sent_at.is_(None))
                .values(sent_at=now, sent_by=by.name)
                .returning(Announcement.id)
            )
            if claimed is None:
                raise Conflict(f"announcement {announcement_id} was sent already", "already_sent")
            found = await read_audience(session, view.targets)
            texts = rendered(view)
            for lang, ids in found.recipients.items():
                if ids:
                    await enqueue_multicast(session, ids, [texts[lang]], now=now,
                                            source=source_of(announcement_id))  # fmt: skip
            await session.execute(
                update(Announcement).where(Announcement.id == announcement_id)
                .values(recipients=found.total)
            )  # fmt: skip
            await audit.record(session, by.name, "announcement.sent", source_of(announcement_id),
                               _described(view, found), at=now)  # fmt: skip
        if self._wake is not None and found.total:
            self._wake()
        sent = replace(view, sent_by=by.name, sent_at=now, recipients=found.total)
        return sent, Deliveries(found.total, found.batches, 0, 0, found.total)

    async def list(
        self, by: Operator, limit: int = 50
    ) -> list[tuple[AnnouncementView, Deliveries]]:
        """Newest first, those within the operator's reach, each with its delivery counts."""
        query = select(Announcement).order_by(Announcement.id.desc()).limit(limit)
        if by.municipality is not None:
            query = query.where(Announcement.municipality == by.municipality)
        async with self._db.transaction() as session:
            views = [_view(row) for row in await session.scalars(query)]
            counts = await deliveries(session, [v.id for v in views])
        return [(v, counts.get(v.id, Deliveries(v.recipients or 0, 0, 0, 0, 0))) for v in views]

    async def _reachable(
        self, session: AsyncSession, announcement_id: int, by: Operator
    ) -> AnnouncementView:
        row = await session.get(Announcement, announcement_id)
        if row is None:
            raise NotFound(f"no announcement {announcement_id}")
        by.require_reach(row.municipality, f"announcement {announcement_id}")
        return _view(row)


async def deliveries(session: AsyncSession, ids: Sequence[int]) -> dict[int, Deliveries]:
    """Per announcement: its batches and residents by the state of their batch."""
    by_source = {source_of(i): i for i in ids}
    if not by_source:
        return {}
    rows = await session.execute(
        select(OutboxMessage.source, OutboxMessage.state, func.count(),
               func.sum(OutboxMessage.recipient_count))
        .where(OutboxMessage.recipients.is_not(None), OutboxMessage.source.in_(by_source))
        .group_by(OutboxMessage.source, OutboxMessage.state)
    )  # fmt: skip
    tallies: dict[int, dict[str, int]] = {}
    for source, state, batches, residents in rows:
        tally = tallies.setdefault(by_source[source], {"batches": 0, "recipients": 0})
        tally["batches"] += batches
        tally["recipients"] += int(residents or 0)
        tally[state] = tally.get(state, 0) + int(residents or 0)
    return {i: Deliveries(t["recipients"], t["batches"], t.get("sent", 0), t.get("failed", 0),
                          t.get("pending", 0)) for i, t in tallies.items()}  # fmt: skip


async def heard_by(
    db: Database, registration: Registration, drills: bool, count: int
) -> list[Sent]:
    """The newest announcements sent to the registration's district and situation, or to
    its shelter."""
    async with db.transaction() as session:
        rows = await session.scalars(
            select(Announcement)
            .where(Announcement.municipality == registration.municipality,
                   Announcement.sent_at.is_not(None))
            .order_by(Announcement.sent_at.desc(), Announcement.id.desc())
            .limit(HEARD)
        )  # fmt: skip
        heard = [Heard(Sent(r.sent_at, r.text_ja, r.text_en, r.drill_id is not None), _targets(r))
                 for r in rows if r.sent_at is not None]  # fmt: skip
    return latest(heard, registration.district, registration.stay, drills, count,
                  registration.station_id)  # fmt: skip
