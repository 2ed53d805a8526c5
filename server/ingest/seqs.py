"""Seq gaps: which seqs a gateway skipped, decided from the seqs one batch brought."""

from __future__ import annotations

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
