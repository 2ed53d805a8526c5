"""What the outbox keeps in memory while its disk refuses writes (full, or failing).

A gateway whose data directory is full must not crash and must not lose what matters. The
entries it could not store wait here, in order, and go to disk ahead of the next append
that succeeds. States are retained snapshots, so only the newest per `supersedes` key is
kept: the intermediate states of a full disk are lost by design (they would be history
only). Events and command results are kept, every one, up to `max_entries`; past that the
oldest are dropped, counted and logged, since memory is finite too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from gateway.outbox import Entry

log = logging.getLogger(__name__)

MAX_HELD: Final = 100_000
"""Entries held at most (an event is under a kilobyte: tens of MB in the worst case)."""


class Hold:
    """Entries waiting for the disk, states coalesced per key."""

    def __init__(self, max_entries: int = MAX_HELD) -> None:
        self._entries: list[Entry] = []
        self._max = max_entries
        self.coalesced = 0
        """States replaced here by a newer one of the same key before reaching the disk."""
        self.dropped = 0
        """Events dropped because the hold was full (lost: logged)."""

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entries: Sequence[Entry]) -> None:
        """Hold `entries` after what is held; a state replaces the held one of its key."""
        keys = {e.supersedes for e in entries if e.supersedes is not None}
        kept = [e for e in self._entries if e.supersedes is None or e.supersedes not in keys]
        self.coalesced += len(self._entries) - len(kept)
        kept.extend(entries)
        if len(kept) > self._max:
            lost = len(kept) - self._max
            self.dropped += lost
            log.error("outbox hold full: %d entries dropped (%d in all)", lost, self.dropped)
            kept = kept[lost:]
        self._entries = kept

    def merged(self, entries: Sequence[Entry]) -> list[Entry]:
        """What to try to store now: the held entries, coalesced with `entries`, in order."""
        keys = {e.supersedes for e in entries if e.supersedes is not None}
        kept = [e for e in self._entries if e.supersedes is None or e.supersedes not in keys]
        return [*kept, *entries]

    def clear(self) -> None:
        self._entries = []
