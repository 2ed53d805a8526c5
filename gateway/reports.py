"""From poll results to contract messages in the outbox: states, events, results, birth.

The reporter keeps, per unit, the last reading seen (for event edges) and the last one
published (for change detection and the report period). It stamps messages with the
time of measurement and hands them to the outbox in one transaction per reading; the
publisher takes them from there.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.changes import EventDraft, is_significant, unit_events
from gateway.outbox import Entry, Outbox
from gateway.snapshot import UnitReading
from protocol.payloads import CommandResult, EventKind, GatewayStatus, UnitEvent, UnitState
from protocol.topics import COMMAND_RESULT, UNIT_EVENT, UNIT_STATE, UnitAddress

log = logging.getLogger(__name__)


@dataclass
class _UnitRecord:
    seen: UnitReading | None = None
    seen_ts: datetime | None = None
    published: UnitReading | None = None
    published_at: float | None = None
    online: bool | None = None
    """None until the first poll answers or the unit is declared lost."""


class Reporter:
    """Turns readings into outbox entries; implements the poller's ReadingSink."""

    def __init__(
        self,
        gw_id: str,
        prefix: str,
        units: Sequence[UnitAddress],
        outbox: Outbox,
        notify: Callable[[], None],
        report_period_s: float,
        version: str,
        boot_id: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gw_id = gw_id
        self.prefix = prefix
        self.version = version
        self.boot_id = boot_id
        self._units = {unit: _UnitRecord() for unit in units}
        self._outbox = outbox
        self._notify = notify
        self._report_period_s = report_period_s
        self._clock = clock

    def on_reading(self, unit: UnitAddress, reading: UnitReading, ts: datetime) -> None:
        record = self._units[unit]
        events = unit_events(record.seen, reading)
        record.seen, record.seen_ts, record.online = reading, ts, True
        now = self._clock()
        if (
            not events
            and not self._due(record, now)
            and not is_significant(record.published, reading)
        ):
            return
        record.published, record.published_at = reading, now
        self._append([*(self._event(unit, e, ts) for e in events), self._state(unit, ts)])

    def on_unit_lost(self, unit: UnitAddress, why: str, ts: datetime) -> None:
        record = self._units[unit]
        record.online, record.published_at = False, self._clock()
        lost = EventDraft(EventKind.UNIT_LOST, detail=why[:200])
        self._append([self._event(unit, lost, ts), self._state(unit, ts)])

    def on_unit_found(self, unit: UnitAddress, ts: datetime) -> None:
        self._append([self._event(unit, EventDraft(EventKind.UNIT_FOUND), ts)])

    def on_command_result(self, cmd_id: str, ok: bool, error: str | None) -> None:
        result = CommandResult(seq=0, ts=datetime.now(UTC), cmd_id=cmd_id, ok=ok, error=error)
        topic = COMMAND_RESULT.format(self.prefix, self.gw_id)
        self._append([Entry(topic, result, retain=False, supersedes=None)])

    def tick(self) -> None:
        """Publish the state of every unit whose report period ran out since its last one.

        Call it when `wait_s` says. A poll that comes a moment before the deadline does not
        publish, and the next one would be a poll period late; so the deadline publishes
        the newest reading (stamped with when it was measured), or a lost unit's offline
        state (no poll answers for it).
        """
        now = self._clock()
        for unit, record in self._units.items():
            if record.online is None or not self._due(record, now):
                continue
            if record.online:
                record.published = record.seen
            record.published_at = now
            ts = record.seen_ts if record.online and record.seen_ts else datetime.now(UTC)
            self._append([self._state(unit, ts)])

    def wait_s(self) -> float:
        """Seconds until the next unit's report period runs out (a period while none has)."""
        now = self._clock()
        deadlines = [
            r.published_at + self._report_period_s
            for r in self._units.values()
            if r.online is not None and r.published_at is not None
        ]
        return max(0.0, min(deadlines, default=now + self._report_period_s) - now)

    def birth(self) -> GatewayStatus:
        """The retained `online` status with the unit inventory, built at each connect."""
        return GatewayStatus(
            seq=0,
            ts=datetime.now(UTC),
            state="online",
            boot_id=self.boot_id,
            version=self.version,
            units=[str(u) for u in self._units],
        )

    def snapshots(self) -> list[Entry]:
        """The present state of every unit we know anything about, for a fresh connection."""
        return [
            self._state(unit, record.seen_ts or datetime.now(UTC))
            for unit, record in self._units.items()
            if record.online is not None
        ]

    def _due(self, record: _UnitRecord, now: float) -> bool:
        return record.published_at is None or now - record.published_at >= self._report_period_s

    def _state(self, unit: UnitAddress, ts: datetime) -> Entry:
        record = self._units[unit]
        reading = record.seen if record.online else None
        state = UnitState(
            seq=0,
            ts=ts,
            online=bool(record.online),
            battery=reading.battery if reading else None,
            ports=reading.ports if reading else [],
        )
        topic = UNIT_STATE.format(self.prefix, self.gw_id, unit)
        return Entry(topic, state, retain=True, supersedes=topic)

    def _event(self, unit: UnitAddress, draft: EventDraft, ts: datetime) -> Entry:
        event = UnitEvent(
            seq=0,
            ts=ts,
            event_id=os.urandom(16).hex(),
            kind=draft.kind,
            port=draft.port,
            alarm=draft.alarm,
            error=draft.error,
            detail=draft.detail,
        )
        return Entry(
            UNIT_EVENT.format(self.prefix, self.gw_id, unit), event, retain=False, supersedes=None
        )

    def _append(self, entries: list[Entry]) -> None:
        self._outbox.append(entries)
        self._notify()
