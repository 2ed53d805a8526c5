"""Seq gaps: which seqs a gateway skipped, decided from the seqs one batch brought."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable


def new_gaps(
    max_seq: int, seqs: Iterable[int], reserved: Collection[int] = ()
) -> tuple[int, list[tuple[int, int]]]:
    """(new max_seq, gaps as (first_missing, last_missing)) after `seqs` arrive.

    Only jumps above the running maximum are gaps; lower seqs are replays that may fill
    earlier ones. Nothing is a gap on first sight (max_seq -1: we joined late). A gap that is
    exactly one `reserved` seq is not one: the gateway reserves its Last Will's seq right
    after each birth and publishes it only when it dies.
    """
    gaps: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if seq <= max_seq:
            continue
        if max_seq >= 0 and seq > max_seq + 1:
            first, last = max_seq + 1, seq - 1
            if not (first == last and first in reserved):
                gaps.append((first, last))
        max_seq = seq
    return max_seq, gaps


def without(gaps: Iterable[tuple[int, int]], seqs: Iterable[int]) -> list[tuple[int, int]]:
    """`gaps` less the seqs that have arrived since: a gap is what was sent and never came.

    Late seqs split a gap: (3, 9) less {5, 9} -> [(3, 4), (6, 8)].
    """
    arrived = sorted(set(seqs))
    out: list[tuple[int, int]] = []
    for first, last in gaps:
        start = first
        for seq in arrived[bisect_left(arrived, first) : bisect_right(arrived, last)]:
            if seq > start:
                out.append((start, seq - 1))
            start = seq + 1
        if start <= last:
            out.append((start, last))
    return out
