"""The plausibility rules, as plain functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.ingest.plausibility import Bounds, seq_allowance, ts_plausible

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
BOUNDS = Bounds(ts_ahead_s=300, ts_behind_s=86_400, seq_lead=1000, seq_rate=10)


def test_ts_within_the_window_is_plausible() -> None:
    assert ts_plausible(NOW, NOW, BOUNDS)
    assert ts_plausible(NOW + timedelta(seconds=300), NOW, BOUNDS)
    assert not ts_plausible(NOW + timedelta(seconds=301), NOW, BOUNDS)
    assert ts_plausible(NOW - timedelta(days=1), NOW, BOUNDS)
    assert not ts_plausible(NOW - timedelta(days=1, seconds=1), NOW, BOUNDS)


def test_the_seq_allowance_grows_with_the_silence() -> None:
    assert seq_allowance(NOW, NOW, BOUNDS) == 1000
    assert seq_allowance(NOW - timedelta(seconds=100), NOW, BOUNDS) == 2000
    assert seq_allowance(NOW + timedelta(seconds=5), NOW, BOUNDS) == 1000  # clock jitter
    assert seq_allowance(None, NOW, BOUNDS) == float("inf")  # never heard: nothing to lead
