"""The depletion forecast is arithmetic: energy left against the booked load."""

from datetime import UTC, datetime, timedelta

from server.incidents.forecast import WindowDemand, forecast_depletion, run_out_time

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SLOT = timedelta(minutes=30)
PHONE_WH = 15.0


def windows(phones: int, count: int, first: datetime = NOW) -> list[WindowDemand]:
    return [WindowDemand(first + i * SLOT, phones) for i in range(count)]


def test_booked_load_that_drains_the_battery_before_the_last_window_is_forecast() -> None:
    # 4 phones x 15 Wh per 30 min = 120 W; 100 Wh last 50 minutes.
    depletion = forecast_depletion(100.0, 0.0, windows(4, 8), SLOT, NOW, PHONE_WH)
    assert depletion is not None
    assert depletion.run_out_at == NOW + timedelta(minutes=50)
    assert depletion.phones_at_risk == 4 * 7  # every window still running after 09:50


def test_enough_energy_for_every_booking_is_not_forecast() -> None:
    assert forecast_depletion(1000.0, 0.0, windows(4, 8), SLOT, NOW, PHONE_WH) is None
    assert forecast_depletion(480.0, 0.0, windows(4, 8), SLOT, NOW, PHONE_WH) is None  # exactly


def test_no_bookings_no_forecast_even_when_discharging() -> None:
    assert forecast_depletion(10.0, 300.0, [], SLOT, NOW, PHONE_WH) is None


def test_the_present_discharge_counts_for_the_next_slot_not_twice() -> None:
    # Drawing 200 W now with 2 phones booked in this window (60 W): the larger counts.
    run_out = run_out_time(50.0, 200.0, windows(2, 1), SLOT, NOW, PHONE_WH)
    assert run_out == NOW + timedelta(minutes=15)
    # After the next slot only bookings count: 100 Wh, 200 W for 30 min, then 1 phone/window.
    later = forecast_depletion(110.0, 200.0, windows(1, 6, NOW + SLOT), SLOT, NOW, PHONE_WH)
    assert later is not None
    assert later.run_out_at == NOW + SLOT + timedelta(minutes=20)  # 10 Wh at 30 W
    assert later.phones_at_risk == 6


def test_a_window_in_progress_counts_only_its_remaining_share() -> None:
    started = NOW - timedelta(minutes=15)  # half of 4 phones' 60 Wh is still to come
    assert run_out_time(29.0, 0.0, windows(4, 1, started), SLOT, NOW, PHONE_WH) is not None
    assert run_out_time(31.0, 0.0, windows(4, 1, started), SLOT, NOW, PHONE_WH) is None


def test_windows_that_already_ended_are_ignored_and_an_empty_battery_runs_out_now() -> None:
    ended = windows(8, 2, NOW - 2 * SLOT)
    assert forecast_depletion(5.0, 0.0, ended, SLOT, NOW, PHONE_WH) is None
    empty = forecast_depletion(0.0, 0.0, windows(1, 1, NOW + SLOT), SLOT, NOW, PHONE_WH)
    assert empty is not None and empty.run_out_at == NOW + SLOT
