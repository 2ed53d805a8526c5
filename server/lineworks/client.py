"""The LINE WORKS transport: sends one outbox row through the bot API (API 2.0).

A row's target is `channel:{channelId}` or `user:{userId}` (`server.delivery.outbox`), its
body one `content`; it is POSTed to `{api}/bots/{botId}/channels/{id}/messages` (or
`/users/{id}/messages`) with the cached access token. 201 is sent. A 401 drops the token
and tries once more with a fresh one; a second 401 is retried later. 429, 5xx, timeouts and
network errors are retried later (after `Retry-After` when given); any other 4xx means the
platform will never take the message, so it failed. The platform keeps no idempotency key,
so a call whose answer was lost may be delivered twice: the sender retries only what it
must.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from server.delivery.backoff import retry_after_s
from server.delivery.http import HTTP_ERRORS, Answer, PlatformHttp
from server.delivery.outbox import Platform
from server.delivery.transport import Attempt, Outgoing
from server.lineworks.errors import WorksError
from server.lineworks.token import TokenSource
from server.settings import Settings

log = logging.getLogger(__name__)

KINDS = {"channel": "channels", "user": "users"}
"""Target prefix -> the path segment of the bot API."""


def message_url(api_url: str, bot_id: str, target: str) -> str | None:
    """Where a message to `target` goes; None for a target that names no talk."""
    kind, _, talk = target.partition(":")
    if kind not in KINDS or not talk:
        return None
    bot, talk = quote(bot_id, safe=""), quote(talk, safe="")
    return f"{api_url.rstrip('/')}/bots/{bot}/{KINDS[kind]}/{talk}/messages"


def outcome(response: Answer, now: datetime) -> Attempt:
    """What the platform's answer to a send means for the row."""
    status = response.status
    if response.ok:
        return Attempt.sent()
    reason = f"LINE WORKS {status} {_described(response)}"
    if status == 429 or status >= 500 or status == 401:
        return Attempt.retry(reason, retry_after_s(response.headers, now))
    return Attempt.failed(reason)


def _described(response: Answer) -> str:
    """The platform's error code and description, to tell why (never a secret)."""
    body = response.json_object()
    if body is None:
        return response.reason
    return f"{body.get('code', '')}: {body.get('description', '')}"[:300]


class WorksTransport:
    """Sends LINE WORKS rows; one HTTP client (explicit timeouts) for token and messages."""

    platform = Platform.LINEWORKS

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._http = PlatformHttp(settings.delivery_timeout_s)
        self.tokens = TokenSource(settings, self._http)

    async def send(self, msg: Outgoing) -> Attempt:
        settings = self._settings
        if not settings.lineworks_bot_id:
            return Attempt.retry("lineworks_bot_id is not set")
        url = message_url(settings.lineworks_api_url, settings.lineworks_bot_id, msg.target)
        if url is None or len(msg.body) != 1:
            return Attempt.failed(f"not a LINE WORKS message: {msg.target}, {len(msg.body)}")
        payload = {"content": msg.body[0]}
        try:
            token = await self.tokens.token()
            response = await self._post(url, token, payload)
            if response.status == 401:
                self.tokens.invalidate(token)
                response = await self._post(url, await self.tokens.token(), payload)
        except (*HTTP_ERRORS, WorksError) as error:
            log.warning("LINE WORKS send of outbox %s deferred: %r", msg.id, error)
            return Attempt.retry(f"{type(error).__name__}: {error}", None)
        return outcome(response, datetime.now(UTC))

    async def _post(self, url: str, token: str, payload: dict[str, Any]) -> Answer:
        return await self._http.post(url, payload=payload,
                                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip

    async def aclose(self) -> None:
        await self._http.aclose()
