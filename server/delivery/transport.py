"""What the sender hands a platform and what it hears back: one row, one attempt.

A transport (`server.line.client.LineTransport`, `server.lineworks.client.WorksTransport`)
turns an `Outgoing` into one platform request and its answer into an `Attempt`; it decides
nothing about timing. The sender (`server.delivery.sender`) owns claims, order, rate limits
and retries, so both platforms get the same durability.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from server.delivery.outbox import Platform


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A claimed outbox row as the transport sees it (a snapshot: the row may change)."""

    id: int
    platform: Platform
    target: str
    body: tuple[dict[str, Any], ...]
    reply_token: str | None
    """Set only while the token is still usable (before the row's `reply_until`)."""
    reply_tried: bool
    """An earlier attempt replied with this row's token, its outcome never recorded."""
    retry_key: str
    attempt: int
    """1 for the first claim of the row, 2 for the next, ..."""
    recipients: tuple[str, ...] = ()
    """A LINE multicast's user ids (`target` then names the batch); empty for one person."""


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    REPLY_UNUSABLE = "reply_unusable"
    """The reply token was refused before we ever used it: push the row next, at once."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one send went. Build with the class methods."""

    outcome: Outcome
    error: str | None = None
    retry_after_s: float | None = None
    """The platform's `Retry-After`, honoured by the retry policy."""
    answered: bool = False
    """The platform answered (a 429, a 5xx): a reply it refused so did not use the token."""

    @classmethod
    def sent(cls) -> Attempt:
        return cls(Outcome.SENT)

    @classmethod
    def retry(
        cls, error: str, retry_after_s: float | None = None, *, answered: bool = False
    ) -> Attempt:
        """Worth trying again later: 429, 5xx (`answered`), a timeout, the network."""
        return cls(Outcome.RETRY, error, retry_after_s, answered)

    @classmethod
    def failed(cls, error: str) -> Attempt:
        """The platform will never take it (a 4xx other than 429): given up, error kept."""
        return cls(Outcome.FAILED, error)

    @classmethod
    def reply_unusable(cls, error: str) -> Attempt:
        return cls(Outcome.REPLY_UNUSABLE, error)


class Transport(Protocol):
    """One platform's sending edge; made once per process, closed by the sender's `stop`."""

    platform: Platform

    async def send(self, msg: Outgoing) -> Attempt:
        """One request; never raises for what the platform or the network did."""
        ...

    async def aclose(self) -> None: ...
