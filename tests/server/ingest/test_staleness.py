"""The staleness rule's guard: silence is judged only on what the ingest has applied."""

from datetime import UTC, datetime, timedelta

from server.ingest.staleness import may_judge_silence

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PERIOD = 10.0
LISTENING = NOW - timedelta(minutes=5)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def test_silence_is_judged_while_the_ingest_is_at_most_one_period_behind() -> None:
    assert may_judge_silence(LISTENING, NOW, PERIOD, None)  # nothing held
    assert may_judge_silence(LISTENING, NOW, PERIOD, ago(0.01))  # a batch being applied
    assert may_judge_silence(LISTENING, NOW, PERIOD, ago(PERIOD))


def test_silence_waits_while_the_ingest_holds_older_messages() -> None:
    """After a database outage: what we heard is not in the database yet."""
    assert not may_judge_silence(LISTENING, NOW, PERIOD, ago(PERIOD + 0.001))
    assert not may_judge_silence(LISTENING, NOW, PERIOD, ago(45))


def test_a_caught_up_ingest_does_not_make_up_for_not_listening() -> None:
    assert not may_judge_silence(None, NOW, PERIOD, None)
    assert not may_judge_silence(ago(29), NOW, PERIOD, None)
