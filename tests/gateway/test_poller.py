import asyncio
from datetime import datetime

from gateway.poller import BACKOFF_MAX_S, LOST_AFTER, BusPoller, UnitSchedule
from gateway.snapshot import UnitReading
from protocol.topics import UnitAddress
from tests.gateway.registers import FakeLink, FakeUnit, dc_port, vendor_port


class RecordingSink:
    def __init__(self) -> None:
        self.readings: list[tuple[UnitAddress, UnitReading]] = []
        self.lost: list[UnitAddress] = []
        self.found: list[UnitAddress] = []

    def on_reading(self, unit: UnitAddress, reading: UnitReading, ts: datetime) -> None:
        self.readings.append((unit, reading))

    def on_unit_lost(self, unit: UnitAddress, why: str, ts: datetime) -> None:
        self.lost.append(unit)

    def on_unit_found(self, unit: UnitAddress, ts: datetime) -> None:
        self.found.append(unit)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_schedule_round_robin_with_zero_period() -> None:
    schedule = UnitSchedule([1, 2, 3], poll_period_s=0.0)
    order = []
    for step in range(6):
        unit = schedule.due(float(step))
        assert unit is not None
        order.append(unit)
        schedule.succeeded(unit, float(step))
    assert order == [1, 2, 3, 1, 2, 3]


def test_schedule_backs_off_a_silent_unit_only_after_it_is_lost() -> None:
    schedule = UnitSchedule([1], poll_period_s=1.0)
    delays = [schedule.backoff_s(n) for n in range(1, LOST_AFTER + 6)]
    assert delays[: LOST_AFTER - 1] == [1.0] * (LOST_AFTER - 1)
    assert delays[LOST_AFTER - 1 :] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0][: len(delays) - 2]
    assert max(delays) <= BACKOFF_MAX_S


def fleet() -> dict[int, FakeUnit]:
    return {i: FakeUnit([dc_port()] * 4, [vendor_port()] * 4) for i in (1, 2, 3)}


def test_silent_unit_is_lost_then_found_and_neighbours_keep_their_turns() -> None:
    units = fleet()
    sink = RecordingSink()
    clock = FakeClock()
    poller = BusPoller("rs485-1", [1, 2, 3], FakeLink(units), sink, 0.0, clock=clock)

    async def run_steps(n: int) -> None:
        for _ in range(n):
            unit_id = poller.schedule.due(clock.now)
            if unit_id is not None:
                await poller.poll(unit_id)
            clock.now += 0.1

    units[2].silent = True
    asyncio.run(run_steps(300))
    assert sink.lost == [UnitAddress("rs485-1", 2)]
    ok = {u: poller.stats[u].polls_ok for u in (1, 2, 3)}
    failed = poller.stats[2].polls_failed
    assert ok[2] == 0
    # 300 steps of 0.1 s: the lost unit is probed with backoff, the others share the rest.
    assert failed < 15
    assert ok[1] + ok[3] >= 300 - failed - 1
    assert abs(ok[1] - ok[3]) <= 1

    units[2].silent = False
    clock.now += BACKOFF_MAX_S
    asyncio.run(run_steps(10))
    assert sink.found == [UnitAddress("rs485-1", 2)]
    assert poller.stats[2].polls_ok > 0


def test_commands_run_ahead_of_polls_and_the_unit_is_polled_after() -> None:
    units = fleet()
    sink = RecordingSink()
    poller = BusPoller("rs485-1", [1, 2, 3], FakeLink(units), sink, 0.0)

    async def scenario() -> None:
        runner = asyncio.create_task(poller.run())
        try:
            await poller.execute(2, lambda layout: [(40100, [7])])
        finally:
            runner.cancel()

    asyncio.run(scenario())
    assert units[2].writes == [(40100, [7])]
    assert any(unit.unit_id == 2 for unit, _ in sink.readings)
