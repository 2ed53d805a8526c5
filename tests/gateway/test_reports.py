"""The reporter's report period: a state goes out on its deadline, not only from a poll."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from gateway.outbox import Outbox
from gateway.reports import Reporter
from gateway.snapshot import UnitReading
from protocol.payloads import UnitState
from protocol.topics import UnitAddress
from tests.gateway.conftest import T0, state_entry

UNIT = UnitAddress("rs485-1", 1)


def a_reading() -> UnitReading:
    state = state_entry(1).message
    assert isinstance(state, UnitState) and state.battery is not None
    return UnitReading(state.battery, state.ports)


READING = a_reading()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reporter(tmp_path: Path, clock: FakeClock) -> tuple[Reporter, Outbox]:
    outbox = Outbox(tmp_path / "outbox.db", 10_000_000)
    made = Reporter("gw-test", "chargenet/v1", [UNIT], outbox, notify=lambda: None,
                    report_period_s=1.0, version="0.1", boot_id="boot-1", clock=clock)  # fmt: skip
    return made, outbox


def states(outbox: Outbox) -> list[dict[str, object]]:
    return [json.loads(m.payload) for m in outbox.pending() if m.topic.endswith("/state")]


def test_the_deadline_publishes_when_a_poll_came_a_moment_early(tmp_path: Path) -> None:
    clock = FakeClock()
    made, outbox = reporter(tmp_path, clock)
    assert made.wait_s() == 1.0  # nothing heard yet: look again in a period
    made.on_reading(UNIT, READING, T0)
    assert len(states(outbox)) == 1
    clock.now += 0.99
    made.on_reading(UNIT, READING, T0.replace(second=1))  # unchanged, and not yet due
    assert len(states(outbox)) == 1
    assert abs(made.wait_s() - 0.01) < 1e-9
    clock.now += 0.01
    made.tick()
    sent = states(outbox)
    assert len(sent) == 2
    assert sent[-1]["ts"] == "2026-11-24T09:00:01.000Z"  # the newest reading, as measured
    assert made.wait_s() == 1.0
    made.tick()  # not due again yet
    assert len(states(outbox)) == 2
    outbox.close()


def test_a_lost_unit_reports_offline_every_period(tmp_path: Path) -> None:
    clock = FakeClock()
    made, outbox = reporter(tmp_path, clock)
    made.on_unit_lost(UNIT, "no answer", datetime.now(UTC))
    for _ in range(3):
        clock.now += made.wait_s()
        made.tick()
    sent = states(outbox)
    assert len(sent) == 4
    assert not any(s["online"] for s in sent)
    outbox.close()
