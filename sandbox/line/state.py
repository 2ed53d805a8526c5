"""What the LINE stand-in remembers: its residents, the reply tokens it issued with their
events, the retry keys it accepted, what each resident was sent, and the faults a test asked
for.

One object per sandbox, made by `sandbox.app.create_app` and handed to the router; every
request runs on the one event loop, so no lock is needed.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sandbox.config import LineConfig

Via = Literal["reply", "push", "multicast"]
"""How a delivery reached the resident."""
Call = Literal["reply", "push", "multicast", "loading", "profile"]
"""A Messaging API call a fault can hit."""
SENDING: tuple[Call, ...] = ("reply", "push", "multicast")
"""The calls faults hit unless a test names others."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One refused or delayed call: a hang of `delay_s` first, then an error `status` (or,
    without one, the call goes through late, even when its caller gave up meanwhile)."""

    status: int | None = None
    delay_s: float = 0.0
    retry_after_s: float | None = None
    calls: tuple[Call, ...] = SENDING


@dataclass(slots=True)
class Resident:
    user_id: str
    display_name: str
    language: str = "ja"
    following: bool = True


@dataclass(slots=True)
class ReplyToken:
    user_id: str
    expires_at: float
    used: bool = False


@dataclass(frozen=True, slots=True)
class Delivery:
    """One accepted request, as each of its recipients saw it (those who had blocked the
    account saw nothing, though the platform took it: it answers 200 all the same)."""

    via: Via
    to: tuple[str, ...]
    messages: list[dict[str, Any]]
    retry_key: str | None
    request_id: str
    at: str
    sent: list[dict[str, str]]
    """The `sentMessages` the platform answered (and answers again on a reused retry key)."""
    blocked: tuple[str, ...] = ()

    def view(self) -> dict[str, Any]:
        return {
            "via": self.via, "to": list(self.to), "messages": self.messages,
            "retry_key": self.retry_key, "request_id": self.request_id, "at": self.at,
            "blocked": list(self.blocked),
        }  # fmt: skip


@dataclass(slots=True)
class LineState:
    config: LineConfig
    clock: Callable[[], float] = time.time
    webhook_url: str = ""
    """Settable after start (`POST /_sandbox/config`): the server's port is known later."""
    destination: str = field(default_factory=lambda: "U" + secrets.token_hex(16))
    """The official account's user id, the `destination` of every webhook."""
    residents: dict[str, Resident] = field(default_factory=dict)
    reply_tokens: dict[str, ReplyToken] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Each resident's webhook events, oldest first (a redelivery resends one)."""
    deliveries: list[Delivery] = field(default_factory=list)
    retry_keys: dict[str, Delivery] = field(default_factory=dict)
    faults: deque[Fault] = field(default_factory=deque)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.webhook_url = self.webhook_url or self.config.webhook_url

    def resident(
        self, user_id: str, language: str | None = None, display_name: str | None = None
    ) -> Resident:
        """The resident with this id, met now if new; `language` and `display_name` as their
        LINE app has them."""
        found = self.residents.get(user_id)
        if found is None:
            found = self.residents[user_id] = Resident(user_id, f"住民 {len(self.residents) + 1}")
        found.language = language or found.language
        found.display_name = display_name or found.display_name
        return found

    def issue_reply_token(self, user_id: str) -> str:
        token = secrets.token_hex(16)
        self.reply_tokens[token] = ReplyToken(user_id, self.clock() + self.config.reply_token_ttl_s)
        return token

    def take_reply_token(self, token: str) -> str | None:
        """The resident a fresh, unused token answers, using it up; None for any other."""
        found = self.reply_tokens.get(token)
        if found is None or found.used or self.clock() >= found.expires_at:
            return None
        found.used = True
        return found.user_id

    def expire_reply_tokens(self) -> int:
        """Let every token run out now; how many were still usable."""
        now = self.clock()
        live = [t for t in self.reply_tokens.values() if not t.used and t.expires_at > now]
        for token in live:
            token.expires_at = now
        return len(live)

    def message_id(self) -> str:
        """A message id as the platform writes them: 18 digits."""
        return str(500_000_000_000_000_000 + next(self.ids))

    def deliver(
        self,
        via: Via,
        to: tuple[str, ...],
        messages: list[dict[str, Any]],
        retry_key: str | None,
        request_id: str,
    ) -> Delivery:
        """Record an accepted request (its retry key, if any, is used from now on)."""
        sent = [{"id": self.message_id(), "quoteToken": secrets.token_urlsafe(24)}
                for _ in messages]  # fmt: skip
        blocked = tuple(u for u in to if u in self.residents and not self.residents[u].following)
        delivery = Delivery(via, to, messages, retry_key, request_id, self.timestamp(), sent,
                            blocked)  # fmt: skip
        self.deliveries.append(delivery)
        if retry_key is not None:
            self.retry_keys[retry_key] = delivery
        return delivery

    def messages(self, user_id: str) -> list[Delivery]:
        """What this resident saw, in arrival order (nothing while they had blocked us)."""
        return [d for d in self.deliveries if user_id in d.to and user_id not in d.blocked]

    def add_faults(self, fault: Fault, count: int) -> None:
        self.faults.extend([fault] * count)

    def next_fault(self, call: Call) -> Fault | None:
        """The first queued fault that hits `call`, used up by it."""
        for fault in self.faults:
            if call in fault.calls:
                self.faults.remove(fault)
                return fault
        return None

    def reset(self) -> None:
        """Forget residents, events, tokens, deliveries, retry keys and faults."""
        for table in (self.residents, self.reply_tokens, self.events, self.retry_keys):
            table.clear()
        self.deliveries.clear()
        self.faults.clear()

    def timestamp(self) -> str:
        """Now in UTC with milliseconds, `Z`."""
        moment = datetime.fromtimestamp(self.clock(), UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
