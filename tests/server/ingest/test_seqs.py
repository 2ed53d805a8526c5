"""Gap arithmetic: jumps become gaps, late seqs strike them off."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.ingest.seqs import new_gaps, without


def test_late_seqs_split_and_remove_gaps() -> None:
    assert without([(3, 9)], [5, 9]) == [(3, 4), (6, 8)]
    assert without([(3, 3), (5, 6)], [3, 5, 6]) == []
    assert without([(3, 9)], [1, 12]) == [(3, 9)]


@given(st.integers(0, 50), st.sets(st.integers(0, 200)), st.sets(st.integers(0, 200)))
def test_without_leaves_exactly_the_missing(start: int, first: set[int], late: set[int]) -> None:
    _, gaps = new_gaps(start, first)
    missing = {s for a, b in gaps for s in range(a, b + 1)}
    left = {s for a, b in without(gaps, late) for s in range(a, b + 1)}
    assert left == missing - late
