"""Who an announcement reaches, and the counts an operator previews: plain data in, plain
data out (`server.announcements.service` reads the rows).

An announcement is for one municipality's residents: those registered (`resident_registrations`)
in the chosen districts and in the chosen situations (either left empty: any), and at the
chosen stations (shelters) those registered there and those with an active booking there,
each once. A resident who blocked the account (LINE
`following` false) is left out, and so, for a drill's announcement, is everyone who did not
opt in to drills. Each recipient gets the text of the language their chat uses, so the
recipients are split by language, and each language into LINE's batches of 500.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from server.delivery.outbox import MULTICAST_RECIPIENTS

LANGUAGES: Final = ("ja", "en")
STAYS: Final = ("shelter", "home", "relatives", "car")
"""`ResidentRegistration.stay`'s values, as the LINE registration offers them."""


@dataclass(frozen=True, slots=True)
class Targets:
    municipality: str
    districts: tuple[str, ...] = ()
    stays: tuple[str, ...] = ()
    stations: tuple[str, ...] = ()
    drill_id: int | None = None

    @property
    def by_registration(self) -> bool:
        """Registered residents are reached (a district or a situation was chosen)."""
        return bool(self.districts or self.stays)

    def reaches(self, district: str | None, stay: str, station_id: str | None = None) -> bool:
        """A registration in the municipality is among those chosen (or at a station chosen)."""
        if station_id is not None and station_id in self.stations:
            return True
        return (
            self.by_registration
            and (not self.districts or district in self.districts)
            and (not self.stays or stay in self.stays)
        )


@dataclass(slots=True)
class Reach:
    """Why one resident is reached: their registration, the stations chosen they are
    registered at or booked at."""

    user_id: str
    district: str | None = None
    stay: str | None = None
    stations: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Resident:
    """What the chat (`line_residents`) knows of a resident that sending needs."""

    language: str = "ja"
    following: bool = True
    drill_opt_in: bool = False


@dataclass(frozen=True, slots=True)
class Audience:
    """The recipients by language and the counts per target; never shown as user ids."""

    recipients: Mapping[str, tuple[str, ...]]
    """Language -> user ids, sorted."""
    districts: Mapping[str, int]
    stays: Mapping[str, int]
    stations: Mapping[str, int]
    unfollowed: int
    """Reached by the targets but blocked the account: not sent to."""
    not_in_drill: int
    """Reached, but a drill's announcement and not opted in to drills."""

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.recipients.values())

    @property
    def languages(self) -> dict[str, int]:
        """Residents per language."""
        return {lang: len(ids) for lang, ids in self.recipients.items()}

    @property
    def batches(self) -> int:
        return sum(math.ceil(len(ids) / MULTICAST_RECIPIENTS) for ids in self.recipients.values())


def audience(
    targets: Targets, reaches: Iterable[Reach], residents: Mapping[str, Resident]
) -> Audience:
    """The residents reached, each once, with the counts per chosen target (every target
    named, 0 when it reaches nobody)."""
    by_language: dict[str, list[str]] = {lang: [] for lang in LANGUAGES}
    districts: Counter[str] = Counter(dict.fromkeys(targets.districts, 0))
    stays: Counter[str] = Counter(dict.fromkeys(targets.stays, 0))
    stations: Counter[str] = Counter(dict.fromkeys(targets.stations, 0))
    unfollowed = not_in_drill = 0
    for reach in reaches:
        resident = residents.get(reach.user_id, Resident())
        if not resident.following:
            unfollowed += 1
            continue
        if targets.drill_id is not None and not resident.drill_opt_in:
            not_in_drill += 1
            continue
        language = resident.language if resident.language in LANGUAGES else LANGUAGES[0]
        by_language[language].append(reach.user_id)
        if reach.stay is not None:
            if reach.district is not None and reach.district in districts:
                districts[reach.district] += 1
            if reach.stay in stays:
                stays[reach.stay] += 1
        for station in reach.stations:
            stations[station] += 1
    return Audience(
        {lang: tuple(sorted(ids)) for lang, ids in by_language.items()},
        dict(districts), dict(stays), dict(stations), unfollowed, not_in_drill,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Sent:
    """A sent announcement as a resident may read it again (「お知らせ」)."""

    sent_at: datetime
    text_ja: str
    text_en: str
    drill: bool


@dataclass(frozen=True, slots=True)
class Heard:
    """A sent announcement and its targets, for `latest`."""

    sent: Sent
    targets: Targets


def latest(
    heard: Sequence[Heard],
    district: str | None,
    stay: str,
    drills: bool,
    count: int,
    station_id: str | None = None,
) -> list[Sent]:
    """The newest `count` announcements (given newest first) a registration in `district`
    and `stay` (at the shelter `station_id`) was among: drills' only to residents who take
    part in drills."""
    found = [h.sent for h in heard
             if h.targets.reaches(district, stay, station_id)
             and (drills or not h.sent.drill)]  # fmt: skip
    return found[:count]
