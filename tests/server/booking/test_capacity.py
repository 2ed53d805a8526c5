"""The capacity rules: windows in Japan time, ports and energy, ports and ticket codes.

The stateful test drives a small in-memory ledger through random sequences of bookings,
cancellations, port failures, losses of sight and recoveries, battery drops and the passing
of time, using only the core's functions, and checks after every step that nothing is
overbooked, left on a dead port, or held out of sight longer than the hold.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from random import Random

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from server.booking.capacity import (
    JST,
    TICKET_ALPHABET,
    Placement,
    PortView,
    StationView,
    assign_port,
    displaced,
    held,
    phones_left,
    ticket_code,
    window_capacity,
    window_starts,
)

EPP = 15.0
HOLD = timedelta(hours=2)


def station(
    *statuses: str,
    energy_wh: float = 1e6,
    slot: int = 30,
    opens: str | None = None,
    closes: str | None = None,
) -> StationView:
    ports = tuple(
        PortView(unit_pk=1 + i // 4, port=1 + i % 4, status=s) for i, s in enumerate(statuses)
    )
    return StationView("s1", 33.84, 132.77, slot, opens, closes, ports, energy_wh)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def jst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=JST).astimezone(UTC)


# --- windows ----------------------------------------------------------------------------


def test_windows_align_to_the_slot_and_skip_the_one_already_started() -> None:
    starts = window_starts(station("available"), utc(2026, 11, 24, 0, 10), timedelta(hours=2))
    assert starts == [utc(2026, 11, 24, 0, 30), utc(2026, 11, 24, 1), utc(2026, 11, 24, 1, 30),
                      utc(2026, 11, 24, 2)]  # fmt: skip
    assert all(s.tzinfo == UTC for s in starts)


def test_a_window_starting_exactly_at_earliest_is_offered() -> None:
    starts = window_starts(station("available"), utc(2026, 11, 24, 3), timedelta(hours=1))
    assert starts == [utc(2026, 11, 24, 3), utc(2026, 11, 24, 3, 30)]


def test_opening_hours_are_japan_time_and_windows_end_by_closing() -> None:
    s = station("available", opens="08:00", closes="20:00")
    starts = window_starts(s, jst(2026, 11, 24, 19, 0), timedelta(hours=14))
    assert starts[:2] == [jst(2026, 11, 24, 19, 0), jst(2026, 11, 24, 19, 30)]
    assert starts[2] == jst(2026, 11, 25, 8, 0)  # nothing from 20:00 to 08:00 JST
    assert starts[-1] == jst(2026, 11, 25, 8, 30)


def test_a_closing_time_off_the_grid_drops_the_window_that_would_overrun() -> None:
    s = station("available", opens="08:15", closes="09:45")
    starts = window_starts(s, jst(2026, 11, 24, 0, 0), timedelta(hours=24))
    assert starts == [jst(2026, 11, 24, 8, 30), jst(2026, 11, 24, 9, 0)]


def test_overnight_hours_wrap_past_midnight() -> None:
    s = station("available", opens="22:00", closes="02:00", slot=60)
    starts = window_starts(s, jst(2026, 11, 24, 12, 0), timedelta(hours=24))
    local = [t.astimezone(JST).hour for t in starts]
    assert local == [22, 23, 0, 1]


def test_a_slot_that_does_not_divide_the_day_never_overlaps_the_next_day() -> None:
    starts = window_starts(
        station("available", slot=50), jst(2026, 11, 24, 22, 0), timedelta(hours=3)
    )
    assert all(b - a >= timedelta(minutes=50) for a, b in pairwise(starts))
    assert jst(2026, 11, 25, 0, 0) in starts
    assert jst(2026, 11, 24, 22, 30) in starts  # 27 x 50 minutes
    assert jst(2026, 11, 24, 23, 20) not in starts  # 23:20-00:10 would overrun the day


def test_windows_reject_naive_times() -> None:
    with pytest.raises(ValueError):
        window_starts(station("available"), datetime(2026, 11, 24), timedelta(hours=1))


# --- capacity ---------------------------------------------------------------------------

W = [utc(2026, 11, 24, 0), utc(2026, 11, 24, 0, 30), utc(2026, 11, 24, 1)]


def test_capacity_is_healthy_ports_minus_bookings() -> None:
    s = station("available", "charging", "finishing", "faulted", "offline")
    assert window_capacity(s, {W[0]: 2}, W, EPP) == {W[0]: 1, W[1]: 3, W[2]: 3}


def test_capacity_is_bounded_by_the_energy_left() -> None:
    s = station(*["available"] * 8, energy_wh=5 * EPP + 14)  # five phones, not six
    assert window_capacity(s, {}, W, EPP) == {W[0]: 5, W[1]: 5, W[2]: 5}
    assert window_capacity(s, {W[0]: 2}, W, EPP) == {W[0]: 3, W[1]: 3, W[2]: 3}


def test_bookings_in_later_windows_also_take_the_energy() -> None:
    """An early booking must not strand a resident already booked later."""
    s = station(*["available"] * 8, energy_wh=4 * EPP)
    assert window_capacity(s, {W[2]: 4}, W, EPP) == {W[0]: 0, W[1]: 0, W[2]: 0}


def test_capacity_is_never_negative() -> None:
    s = station("available", "faulted")
    assert window_capacity(s, {W[0]: 3}, W, EPP)[W[0]] == 0
    assert window_capacity(station("available", energy_wh=0), {}, W, EPP)[W[1]] == 0


def test_phones_left_rejects_a_zero_energy_per_phone() -> None:
    with pytest.raises(ValueError):
        phones_left(station("available"), 0, 0)


def test_assign_port_takes_the_lowest_healthy_free_port() -> None:
    s = station("faulted", "available", "charging", "available", "available")
    assert assign_port(s, set()) == PortView(1, 2, "available")
    assert assign_port(s, {(1, 2)}) == PortView(1, 3, "charging")
    assert assign_port(s, {(1, 2), (1, 3), (1, 4)}) == PortView(2, 1, "available")
    assert assign_port(s, {(1, 2), (1, 3), (1, 4), (2, 1)}) is None


def test_ticket_codes_are_unambiguous_and_reproducible() -> None:
    codes = [ticket_code(Random(7)) for _ in range(3)]
    assert codes[0] == codes[1] == codes[2]
    many = {ticket_code(Random(i)) for i in range(2000)}
    assert all(len(c) == 4 and set(c) <= set(TICKET_ALPHABET) for c in many)
    assert not set("01OIL") & set(TICKET_ALPHABET)
    assert len(many) > 1900  # 31**4 codes: collisions are rare


def test_displaced_reports_dead_ports_doubles_and_the_energy_overrun() -> None:
    s = station("available", "faulted", "available", energy_wh=2 * EPP)
    on = [
        Placement("a", W[0], 1, 1),
        Placement("b", W[0], 1, 2),  # faulted port
        Placement("c", W[1], 1, 1),
        Placement("d", W[1], 1, 1),  # same port, same window
        Placement("e", W[2], 1, 3),  # the third phone: no energy for it
    ]
    assert [b.booking_id for b in displaced(s, on, EPP, now=W[0], hold_for=HOLD)] == [
        "b", "d", "e"]  # fmt: skip


def test_bookings_out_of_sight_are_held_until_the_hold_is_over() -> None:
    """A gateway offline is no evidence the ports are gone: its bookings stay, and move
    only once held `hold_for`; a fault or a disable still moves at once."""
    s = station("offline", "offline", "faulted", "unavailable")
    since = W[0] - timedelta(minutes=30)
    on = [
        Placement("fresh", W[1], 1, 1),  # just found out of sight
        Placement("held", W[1], 1, 2, held_since=since),
        Placement("faulted", W[1], 1, 3),
        Placement("disabled", W[2], 1, 4),
    ]
    moved = displaced(s, on, EPP, now=W[0], hold_for=HOLD)
    assert [b.booking_id for b in moved] == ["faulted", "disabled"]
    kept = [b for b in on if b not in moved]
    assert [b.booking_id for b in held(s, kept)] == ["fresh", "held"]
    later = displaced(s, on, EPP, now=since + HOLD, hold_for=HOLD)
    assert [b.booking_id for b in later] == ["held", "faulted", "disabled"]
    assert displaced(s, on[:1], EPP, now=W[0], hold_for=timedelta(0)) == on[:1]


def test_held_bookings_count_on_the_last_known_energy_new_ones_do_not() -> None:
    """Out of sight, a battery's energy is only remembered: enough to keep the bookings it
    backs, not to promise new ones."""
    blind = replace(station("offline", "offline"), energy_wh=0.0, unseen_wh=2 * EPP)
    on = [Placement("a", W[0], 1, 1), Placement("b", W[1], 1, 2)]
    assert displaced(blind, on, EPP, now=W[0], hold_for=HOLD) == []
    assert window_capacity(blind, {}, W, EPP) == dict.fromkeys(W, 0)
    poorer = replace(blind, unseen_wh=1 * EPP)
    assert displaced(poorer, on, EPP, now=W[0], hold_for=HOLD) == on[1:]  # the latest gives way


# --- the ledger: random sequences ---------------------------------------------------------


class Ledger:
    """One station's bookings in memory, changed only through the core's functions."""

    def __init__(self, view: StationView, windows: list[datetime]) -> None:
        self.view = view
        self.windows = windows
        self.bookings: dict[str, Placement] = {}
        self.to_move: list[Placement] = []
        self.now = windows[0] - timedelta(hours=1)
        self._next = 0

    def booked(self) -> dict[datetime, int]:
        counts = dict.fromkeys(self.windows, 0)
        for b in self.bookings.values():
            counts[b.window_start] += 1
        return counts

    def book(self, window: datetime) -> Placement | None:
        if window_capacity(self.view, self.booked(), self.windows, EPP)[window] <= 0:
            return None
        taken = {(b.unit_pk, b.port) for b in self.bookings.values() if b.window_start == window}
        port = assign_port(self.view, taken)
        assert port is not None, "capacity said yes but no port was free"
        self._next += 1
        placement = Placement(f"b{self._next}", window, port.unit_pk, port.port)
        self.bookings[placement.booking_id] = placement
        return placement

    def cancel(self, booking_id: str) -> None:
        self.bookings.pop(booking_id, None)

    def set_station(self, view: StationView) -> list[Placement]:
        """Apply a new picture of the station; what it can no longer honour is moved, what
        is out of sight is held (since now, unless already)."""
        self.view = view
        moving = displaced(view, self.bookings.values(), EPP, now=self.now, hold_for=HOLD)
        for b in moving:
            del self.bookings[b.booking_id]
        self.to_move.extend(moving)
        on_hold = {b.booking_id for b in held(view, self.bookings.values())}
        for b in list(self.bookings.values()):
            since = (b.held_since or self.now) if b.booking_id in on_hold else None
            self.bookings[b.booking_id] = replace(b, held_since=since)
        return moving


STATUSES = ["available", "charging", "finishing", "unavailable", "faulted", "offline"]


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger(station(*["available"] * 6, energy_wh=20 * EPP), W)

    @rule(w=st.sampled_from(W))
    def book(self, w: datetime) -> None:
        phones_before = phones_left(self.ledger.view, len(self.ledger.bookings), EPP)
        made = self.ledger.book(w)
        if made is not None:
            assert phones_before >= 1, "booked a phone the battery cannot charge"

    @rule(i=st.integers(0, 40))
    def cancel(self, i: int) -> None:
        ids = sorted(self.ledger.bookings)
        if ids:
            self.ledger.cancel(ids[i % len(ids)])

    @rule(i=st.integers(0, 5), status=st.sampled_from(STATUSES))
    def port_changes(self, i: int, status: str) -> None:
        """A port fails, is disabled, goes offline, or recovers."""
        ports = list(self.ledger.view.ports)
        target = ports[i]
        ports[i] = replace(target, status=status)
        on_port = {
            b.booking_id
            for b in self.ledger.bookings.values()
            if (b.unit_pk, b.port) == (target.unit_pk, target.port)
        }
        moved = self.ledger.set_station(replace(self.ledger.view, ports=tuple(ports)))
        if ports[i].out_of_sight:
            assert not on_port & {b.booking_id for b in moved}, "moved for a loss of sight"
        elif not ports[i].healthy:
            assert on_port <= {b.booking_id for b in moved}, "left on a dead port"

    @rule(minutes=st.integers(1, 150))
    def time_passes(self, minutes: int) -> None:
        """The sweep looks again (`relocate_due`): holds past `HOLD` move."""
        self.ledger.now += timedelta(minutes=minutes)
        self.ledger.set_station(self.ledger.view)

    @rule(drop_wh=st.floats(0, 200))
    def soc_drops(self, drop_wh: float) -> None:
        view = self.ledger.view
        self.ledger.set_station(replace(view, energy_wh=max(0.0, view.energy_wh - drop_wh)))

    @rule(add_wh=st.floats(0, 200))
    def recharged(self, add_wh: float) -> None:
        view = self.ledger.view
        self.ledger.set_station(replace(view, energy_wh=view.energy_wh + add_wh))

    @invariant()
    def never_overbooked(self) -> None:
        ledger = self.ledger
        healthy = {(p.unit_pk, p.port) for p in ledger.view.ports if p.healthy}
        unseen = {(p.unit_pk, p.port) for p in ledger.view.ports if p.out_of_sight}
        for w, n in ledger.booked().items():
            assert n <= len(healthy | unseen), f"{n} bookings in {w} for {len(healthy)} ports"
        slots = [(b.window_start, b.unit_pk, b.port) for b in ledger.bookings.values()]
        assert len(slots) == len(set(slots)), "a port booked twice in one window"
        for b in ledger.bookings.values():
            port = (b.unit_pk, b.port)
            assert port in healthy or port in unseen, "left on a dead port"
            if port in unseen:
                assert b.held_since is not None and ledger.now - b.held_since < HOLD, "held on"
        assert len(ledger.bookings) <= phones_left(ledger.view, 0, EPP)

    @invariant()
    def moved_bookings_are_not_kept(self) -> None:
        assert not {b.booking_id for b in self.ledger.to_move} & set(self.ledger.bookings)

    @invariant()
    def capacity_matches_what_book_can_do(self) -> None:
        ledger = self.ledger
        free = window_capacity(ledger.view, ledger.booked(), ledger.windows, EPP)
        for w in ledger.windows:
            taken = {(b.unit_pk, b.port) for b in ledger.bookings.values() if b.window_start == w}
            if free[w] > 0:
                assert assign_port(ledger.view, taken) is not None


LedgerMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestLedger = LedgerMachine.TestCase
