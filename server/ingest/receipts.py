"""Receipts: tell each gateway which of its seqs a committed batch settled for good.

A gateway keeps every message in its outbox until a receipt covers it (`gateway.outbox`),
and sends again what the broker took but no receipt covered: so a message the broker
dropped (a shared subscription with every server away) is not lost. Pure: the link
publishes what `receipts` returns once the batch is committed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from protocol.payloads import RECEIPT_RANGES_MAX, Receipt
from protocol.topics import RECEIPT
from server.db.models import Gateway
from server.ingest.router import Inbound


@dataclass(frozen=True, slots=True)
class Settled:
    gw_id: str
    seq_run: str
    seqs: tuple[int, ...]


def settlement(
    gateways: Mapping[str, Gateway], messages: Iterable[Inbound[Any]]
) -> Iterator[Settled]:
    """Per gateway whose run of seqs we know, the seqs of `messages` (about to be claimed).

    A gateway that has not yet named its run (no birth heard) gets no receipt: it sends its
    birth first on every connection, and what it sends again afterwards is receipted then.
    """
    by_gateway: dict[str, set[int]] = defaultdict(set)
    for m in messages:
        by_gateway[m.gw_id].add(m.seq)
    for gw_id, seqs in sorted(by_gateway.items()):
        run = gateways[gw_id].seq_run
        if run is not None:
            yield Settled(gw_id, run, tuple(sorted(seqs)))


def ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, distinct seqs as inclusive runs: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    out: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if out and seq == out[-1][1] + 1:
            out[-1] = (out[-1][0], seq)
        else:
            out.append((seq, seq))
    return out


def receipts(prefix: str, settled: Iterable[Settled]) -> Iterator[tuple[str, bytes]]:
    """(topic, payload) of the receipts for `settled`, at most RECEIPT_RANGES_MAX ranges each."""
    for item in settled:
        topic = RECEIPT.format(prefix, item.gw_id)
        runs = ranges(item.seqs)
        for start in range(0, len(runs), RECEIPT_RANGES_MAX):
            chunk = runs[start : start + RECEIPT_RANGES_MAX]
            yield topic, Receipt(seq_run=item.seq_run, seqs=chunk).model_dump_json().encode()
