"""The retry policy: exponential bound, full jitter under it, the cap, `Retry-After` a floor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from server.delivery.backoff import BASE_S, retry_after_s, retry_delay_s

NOW = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(("attempt", "bound"), [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0)])
def test_the_bound_doubles_per_attempt(attempt: int, bound: float) -> None:
    nearly = retry_delay_s(attempt, cap_s=300.0, draw=0.999999)
    assert nearly == pytest.approx(bound * BASE_S, rel=1e-5)
    assert retry_delay_s(attempt, cap_s=300.0, draw=0.5) == pytest.approx(bound * BASE_S / 2)


def test_full_jitter_can_be_nearly_nothing() -> None:
    assert retry_delay_s(8, cap_s=300.0, draw=0.0) == 0.0


@pytest.mark.parametrize("attempt", [10, 100, 10_000])
def test_capped(attempt: int) -> None:
    assert retry_delay_s(attempt, cap_s=300.0, draw=0.999999) == pytest.approx(300.0, rel=1e-5)


def test_random_draws_stay_under_the_bound() -> None:
    delays = [retry_delay_s(3, cap_s=300.0) for _ in range(500)]
    assert all(0.0 <= d < 4.0 for d in delays)
    assert len(set(delays)) > 400  # spread, not one value for every row that failed together


def test_retry_after_is_a_floor_even_above_the_cap() -> None:
    assert retry_delay_s(1, cap_s=300.0, retry_after_s=30.0, draw=0.5) == 30.0
    assert retry_delay_s(1, cap_s=10.0, retry_after_s=30.0, draw=0.5) == 30.0
    assert retry_delay_s(9, cap_s=300.0, retry_after_s=1.0, draw=0.5) == pytest.approx(128.0)


def test_retry_after_read_as_seconds_or_a_date() -> None:
    assert retry_after_s({"retry-after": "7"}, NOW) == 7.0
    assert retry_after_s({"retry-after": "-3"}, NOW) == 0.0
    date = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    assert retry_after_s({"retry-after": date}, NOW) == 90.0
    assert retry_after_s({}, NOW) is None
    assert retry_after_s({"retry-after": "soon"}, NOW) is None
