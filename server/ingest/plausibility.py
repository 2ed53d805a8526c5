"""Which gateway messages may be believed: a seq or a timestamp no gateway could have sent.

The newest state per unit is chosen by seq, so one message with a seq far ahead (a restored
SD card, a counter bug, a stranger on a broker without ACL) would become the unit's state
and make every later genuine one look old. Two rules keep such a message out:

- its `ts` must lie between `ts_behind_s` before and `ts_ahead_s` after its receipt (a
  72-hour outage replays days-old measurements; a shelter box's clock may run minutes or
  hours fast, which `gateways.clock_skew_s` shows; the year 2999 or 1970 is no
  measurement);
- its seq may lead the highest seq applied for its gateway by at most `seq_lead` plus
  `seq_rate` per second since that gateway was last heard: no more than it can have
  produced meanwhile. After a long silence (an uplink or server outage) the allowance is
  large, so the present still comes through at once.

A refused message is logged and counted, never claimed as seen, never confirmed to the
gateway and never moves its max_seq: a genuine one is still in the gateway's outbox and is
sent again (`gateway.publisher`), by when the allowance has grown to cover it; a forged one
changes nothing. Pure functions: `apply.py` runs them under the gateway's row lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from server.ingest.router import Inbound


@dataclass(frozen=True, slots=True)
class Bounds:
    ts_ahead_s: float = 86_400.0
    ts_behind_s: float = 30 * 86_400.0
    seq_lead: int = 10_000
    seq_rate: float = 100.0
    """Messages per second a gateway can produce, at most (a generous ceiling)."""


DEFAULT_BOUNDS: Final = Bounds()


def ts_plausible(ts: datetime, received_at: datetime, bounds: Bounds) -> bool:
    low = received_at - timedelta(seconds=bounds.ts_behind_s)
    return low <= ts <= received_at + timedelta(seconds=bounds.ts_ahead_s)


def seq_allowance(last_seen_at: datetime | None, received_at: datetime, bounds: Bounds) -> float:
    """How far a seq may lead the gateway's max_seq when it arrives at `received_at`."""
    if last_seen_at is None:
        return float("inf")
    silence = max(0.0, (received_at - last_seen_at).total_seconds())
    return bounds.seq_lead + bounds.seq_rate * silence


def refused(
    messages: Iterable[Inbound[Any]],
    max_seq: int,
    last_seen_at: datetime | None,
    bounds: Bounds,
) -> Iterator[tuple[Inbound[Any], str]]:
    """The messages of one gateway (in seq order) to refuse, each with the reason.

    A gateway seen for the first time (max_seq -1) has no seq to lead: we joined late.
    """
    top = max_seq
    for message in messages:
        payload = message.payload
        if not ts_plausible(payload.ts, message.received_at, bounds):
            yield message, f"ts {payload.ts.isoformat()} is implausible"
            continue
        allowed = seq_allowance(last_seen_at, message.received_at, bounds)
        if top >= 0 and message.seq - top > allowed:
            yield message, f"seq {message.seq} leads {top} by more than {allowed:.0f}"
            continue
        top = max(top, message.seq)
