"""The seen-message sweep: old rows go, and a late copy of an old message is still harmless."""

from __future__ import annotations

from datetime import timedelta

import pytest

from server.db.models import SeenMessage, UnitEventRow
from server.ingest import retention
from server.ingest.retention import forget_seen
from tests.server.ingest.messages import event, state, status
from tests.server.ingest.test_apply import GW, UNIT, Ingest, run


def test_old_seen_rows_are_forgotten_and_late_copies_change_nothing(database_url: str) -> None:
    async def scenario(ingest: Ingest) -> None:
        await ingest.apply(status(GW, 1), state(GW, UNIT, 3, ("faulted", "available")))
        await ingest.apply(event(GW, UNIT, 4, "event-0001"))
        cutoff = ingest.clock + timedelta(milliseconds=1)
        await ingest.apply(state(GW, UNIT, 5, ("available", "available")))
        assert await ingest.count(SeenMessage) == 4

        assert await forget_seen(ingest.db, cutoff) == 3
        assert await ingest.count(SeenMessage) == 1
        assert await forget_seen(ingest.db, cutoff) == 0

        late = await ingest.apply(
            state(GW, UNIT, 3, ("faulted", "available")), event(GW, UNIT, 4, "event-0001")
        )
        assert not late  # the newest state still wins by seq, the event is kept once
        ports = await ingest.ports()
        assert [ports[n].status for n in (1, 2)] == ["available", "available"]
        assert await ingest.count(UnitEventRow) == 1

    run(database_url, scenario)


def test_the_sweep_deletes_in_chunks(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ingest: Ingest) -> None:
        await ingest.apply(status(GW, 1), *(state(GW, f"rs485-1.{i}", 10 + i) for i in range(1, 6)))
        await ingest.apply(status("gw-2", 1), state("gw-2", UNIT, 2))
        assert await forget_seen(ingest.db, ingest.clock + timedelta(seconds=1)) == 8
        assert await ingest.count(SeenMessage) == 0

    monkeypatch.setattr(retention, "CHUNK", 3)
    run(database_url, scenario)
