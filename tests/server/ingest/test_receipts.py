"""Receipts as the gateways read them: ranges, runs, and the size limit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from protocol.payloads import RECEIPT_RANGES_MAX, Receipt
from server.ingest.receipts import Settled, ranges, receipts


def test_ranges_join_consecutive_seqs() -> None:
    assert ranges([7, 1, 3, 2, 3]) == [(1, 3), (7, 7)]
    assert ranges([]) == []


@given(st.sets(st.integers(0, 5000)))
def test_ranges_cover_exactly_the_seqs(seqs: set[int]) -> None:
    covered = {s for first, last in ranges(seqs) for s in range(first, last + 1)}
    assert covered == seqs


def test_receipts_name_the_gateway_and_run_and_split_when_long() -> None:
    every_other = tuple(range(0, 2 * (RECEIPT_RANGES_MAX + 5), 2))
    out = list(receipts("chargenet/v1", [Settled("gw-1", "run-a", every_other)]))
    assert [topic for topic, _ in out] == ["chargenet/v1/gw/gw-1/receipt"] * 2
    parsed = [Receipt.model_validate_json(payload) for _, payload in out]
    assert {r.seq_run for r in parsed} == {"run-a"}
    assert [len(r.seqs) for r in parsed] == [RECEIPT_RANGES_MAX, 5]
    assert {first for r in parsed for first, _ in r.seqs} == set(every_other)
