"""Stations as residents read them on LINE: names in both languages, address, map point.

The messages need a little more than the booking core's `StationView` (names, address) and
much less than the registry row; `load_stations` reads just that, and `find_stations` reads
what a resident typed (a station's id or name, or a place: its address or municipality).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Station
from server.drills.scope import active_clause

FOUND_LIMIT: Final = 5
"""A typed name rarely means more stations than this; the nearest of them are ranked."""
KANA_SHIFT: Final = ord("ア") - ord("あ")
MIN_QUERY: Final = 2
"""Characters a typed name needs before it is searched (one kana matches half the map)."""


@dataclass(frozen=True, slots=True)
class StationInfo:
    """What a resident is shown of a station."""

    id: str
    name_ja: str
    name_en: str
    address: str
    latitude: float
    longitude: float
    slot_minutes: int
    """The length of its windows: a window's end is its start plus this."""
    drill_id: int | None = None
    """A drill's twin: only residents taking part in drills may book it."""

    def name(self, lang: str) -> str:
        """The station's name in the resident's language (Japanese when it has no English)."""
        return self.name_en if lang == "en" and self.name_en else self.name_ja


def _info(row: Station) -> StationInfo:
    return StationInfo(row.id, row.name_ja, row.name_en, row.address, row.latitude,
                       row.longitude, row.slot_minutes, row.drill_id)  # fmt: skip


async def load_stations(
    session: AsyncSession, ids: Iterable[str] | None = None
) -> dict[str, StationInfo]:
    """The stations of these ids that exist (all of them for None), by id: an ended drill's
    twins too, so that what is told of their bookings still names them."""
    query = select(Station)
    if ids is not None:
        wanted = sorted({i for i in ids if i})
        if not wanted:
            return {}
        query = query.where(Station.id.in_(wanted))
    return {row.id: _info(row) for row in await session.scalars(query)}


async def load_drill_stations(session: AsyncSession) -> list[StationInfo]:
    """The twins of the drills running now, by id."""
    rows = await session.scalars(
        select(Station).where(Station.drill_id.is_not(None), active_clause()).order_by(Station.id)
    )
    return [_info(row) for row in rows]


async def load_municipality_stations(session: AsyncSession, municipality: str) -> list[StationInfo]:
    """The municipality's stations (its shelters that have one), drills' twins aside, by id."""
    rows = await session.scalars(
        select(Station)
        .where(Station.municipality == municipality, Station.drill_id.is_(None))
        .order_by(Station.id)
    )
    return [_info(row) for row in rows]


async def find_stations(session: AsyncSession, text: str) -> list[StationInfo]:
    """Stations a typed text names: its id exactly, else a part of a name, an address or a
    municipality (case-insensitive); best first (id, then name, then place), at most
    `FOUND_LIMIT`."""
    query = text.strip().replace("\u3000", " ")
    if len(query) < MIN_QUERY:
        return []
    exact = await session.get(Station, query.lower())
    if exact is not None and exact.drill_id is None:
        return [_info(exact)]
    pattern = f"%{_escaped(query.lower())}%"
    reading = f"%{_escaped(katakana(query))}%"
    by_name = or_(
        func.lower(Station.name_ja).like(pattern, escape="\\"),
        func.lower(Station.name_en).like(pattern, escape="\\"),
        Station.name_kana.like(reading, escape="\\"),
    )
    by_place = or_(
        func.lower(Station.address).like(pattern, escape="\\"),
        func.lower(Station.municipality).like(pattern, escape="\\"),
    )
    found: dict[str, StationInfo] = {}
    for where in (by_name, by_place):
        rows = await session.scalars(
            select(Station)
            .where(where, Station.drill_id.is_(None))  # a drill's twins are offered apart
            .order_by(Station.id)
            .limit(FOUND_LIMIT)
        )
        for row in rows:
            found.setdefault(row.id, _info(row))
    return list(found.values())[:FOUND_LIMIT]


def katakana(text: str) -> str:
    """Hiragana as katakana (the readings are published in katakana; residents often type
    hiragana), and half-width kana as full-width."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(chr(ord(c) + KANA_SHIFT) if "ぁ" <= c <= "ゖ" else c for c in text)


def _escaped(text: str) -> str:
    """`text` literal inside a LIKE pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
