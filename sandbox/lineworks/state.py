"""What the LINE WORKS stand-in remembers: the tokens it issued, what the bot sent where, the
buttons crews pressed, and the faults a test asked for.

One object per sandbox, made by `sandbox.app.create_app` and handed to the router; every
request runs on the one event loop, so no lock is needed.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Literal

from sandbox.config import WorksConfig

RATE_WINDOW_S: Final = 60.0
Conversation = Literal["channels", "users"]
"""Where a bot message went: a channel (a group talk) or one user (a 1:1 talk)."""
Endpoint = Literal["messages", "token"]
"""What a fault applies to: the bot's message endpoints or the token endpoint."""


class TokenProblem(StrEnum):
    """Why an access token is refused (each a 401, as the platform answers)."""

    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(slots=True)
class Token:
    expires_at: float
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class Fault:
    """One refused or delayed call: an error status, or a hang of `delay_s` first."""

    status: int | None = None
    delay_s: float = 0.0
    retry_after_s: float | None = None


@dataclass(slots=True)
class WorksState:
    config: WorksConfig
    clock: Callable[[], float] = time.time
    callback_url: str = ""
    """Settable after start (`POST /_sandbox/config`): the server's port is known later."""
    tokens: dict[str, Token] = field(default_factory=dict)
    refresh_tokens: set[str] = field(default_factory=set)
    issued: int = 0
    sent: dict[Conversation, dict[str, list[dict[str, Any]]]] = field(
        default_factory=lambda: {"channels": {}, "users": {}}
    )
    presses: list[dict[str, Any]] = field(default_factory=list)
    faults: dict[Endpoint, deque[Fault]] = field(
        default_factory=lambda: {"messages": deque(), "token": deque()}
    )
    calls: deque[float] = field(default_factory=deque)
    """When the message API was called in the last minute (for `requests_per_min`)."""
    dropped: int = 0
    """Calls hung by a fault whose caller gave up meanwhile: not delivered."""

    def __post_init__(self) -> None:
        self.callback_url = self.callback_url or self.config.callback_url

    def issue_token(self) -> str:
        """A fresh access token, valid `token_ttl_s` from now."""
        token = secrets.token_urlsafe(32)
        self.tokens[token] = Token(self.clock() + self.config.token_ttl_s)
        self.issued += 1
        return token

    def issue_refresh_token(self) -> str:
        token = secrets.token_urlsafe(32)
        self.refresh_tokens.add(token)
        return token

    def live_tokens(self) -> int:
        return sum(self.token_problem(token) is None for token in self.tokens)

    def token_problem(self, token: str) -> TokenProblem | None:
        """None when the token may call the API."""
        known = self.tokens.get(token)
        if known is None:
            return TokenProblem.UNKNOWN
        if known.revoked:
            return TokenProblem.REVOKED
        if self.clock() >= known.expires_at:
            return TokenProblem.EXPIRED
        return None

    def revoke_tokens(self) -> int:
        """Revoke every token issued so far (as an administrator can); how many were live."""
        live = self.live_tokens()
        for token in self.tokens.values():
            token.revoked = True
        return live

    def expire_tokens(self) -> int:
        """Let every token run out now, as if its lifetime had passed; how many were live."""
        now = self.clock()
        live = [t for t in self.tokens.values() if t.expires_at > now]
        for token in live:
            token.expires_at = now
        return len(live)

    def add_faults(self, endpoint: Endpoint, fault: Fault, count: int) -> None:
        self.faults[endpoint].extend([fault] * count)

    def next_fault(self, endpoint: Endpoint) -> Fault | None:
        """The fault the next call to `endpoint` suffers, used up by it."""
        queue = self.faults[endpoint]
        return queue.popleft() if queue else None

    def over_limit_s(self) -> float | None:
        """Count a message API call; when it is one too many this minute, the seconds until
        the next would be taken (the call is refused and not counted)."""
        limit, now = self.config.requests_per_min, self.clock()
        while self.calls and self.calls[0] <= now - RATE_WINDOW_S:
            self.calls.popleft()
        if limit is not None and len(self.calls) >= limit:
            return self.calls[0] + RATE_WINDOW_S - now
        self.calls.append(now)
        return None

    def record(self, where: Conversation, conversation_id: str, content: dict[str, Any]) -> None:
        """A message the platform accepted, as the channel's or user's talk shows it."""
        entry = {"content": content, "at": self.timestamp()}
        self.sent[where].setdefault(conversation_id, []).append(entry)

    def messages(self, where: Conversation, conversation_id: str) -> list[dict[str, Any]]:
        return list(self.sent[where].get(conversation_id, []))

    def talks(self) -> dict[str, Any]:
        """Every channel (configured or sent to) and 1:1 talk with its messages, the presses,
        and the crew members the web view offers."""
        config = self.config
        channels = dict.fromkeys([*config.channels, *self.sent["channels"]])
        users = dict.fromkeys([*self.sent["users"]])
        return {
            "channels": [{"id": c, "title": config.channels.get(c, c),
                          "messages": self.messages("channels", c)} for c in channels],
            "users": [{"id": u, "name": config.users.get(u, u),
                       "messages": self.messages("users", u)} for u in users],
            "presses": list(self.presses),
            "crew": dict(config.users),
        }  # fmt: skip

    def find_action(self, where: Conversation, conversation_id: str, postback: str) -> Any:
        """The newest button in this talk whose press carries `postback` (a message action's
        `postback` or a postback action's `data`); None when no message has one."""
        for entry in reversed(self.sent[where].get(conversation_id, [])):
            for action in actions_of(entry["content"]):
                if postback in (action.get("postback"), action.get("data")):
                    return action
        return None

    def reset(self) -> None:
        """Forget messages, presses and faults (tokens stay valid: the server keeps its own)."""
        self.sent = {"channels": {}, "users": {}}
        self.presses.clear()
        for queue in self.faults.values():
            queue.clear()
        self.dropped = 0
        self.calls.clear()

    def timestamp(self) -> str:
        """Now as the platform writes it (`issuedTime`): UTC, milliseconds, `Z`."""
        moment = datetime.fromtimestamp(self.clock(), UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def actions_of(content: dict[str, Any]) -> list[dict[str, Any]]:
    """Every pressable action of a content: its template's buttons, then its quick replies."""
    actions: list[dict[str, Any]] = list(content.get("actions") or [])
    for item in (content.get("quickReply") or {}).get("items") or []:
        actions.append(item["action"])
    return actions
