"""The LINE transport: sends one outbox row as a reply or a push (Messaging API, line-bot-sdk).

One `AsyncMessagingApi` per process, pointed at `settings.line_api_url` (the sandbox in the
demo and the tests), every call with an explicit timeout. What LINE's answers mean:
- a reply while the row's token is usable; 400 "Invalid reply token": if an earlier attempt
  of this row replied with it (`reply_tried`) and its outcome was lost, that reply was
  accepted (nobody else holds the token), so the row is sent; otherwise the token is of no
  use and the row is pushed next;
- a push with the row's `X-Line-Retry-Key`: 409 means LINE accepted that key before, so the
  row is sent;
- 429, 5xx, timeouts and network errors are retried later (`Retry-After` honoured);
  any other 4xx means LINE will never take the request, so the row failed, LINE's message
  kept.
line-bot-sdk's models stay here: the rest of the server speaks the platform's JSON.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import aiohttp
from linebot.v3.messaging import (
    ApiException,
    AsyncApiClient,
    AsyncMessagingApi,
    Configuration,
    PushMessageRequest,
    ReplyMessageRequest,
)
from pydantic import ValidationError

from server.delivery.backoff import retry_after_s
from server.delivery.outbox import Platform
from server.delivery.sender import IN_FLIGHT_PER_PLATFORM
from server.delivery.transport import Attempt, Outgoing
from server.settings import Settings

log = logging.getLogger(__name__)

INVALID_REPLY_TOKEN = "invalid reply token"


def refusal(error: ApiException, now: datetime) -> Attempt:
    """What a non-2xx answer (other than the reply token's and the retry key's) means."""
    status = int(error.status or 0)
    reason = f"LINE {status} {described(error)}"
    if status == 429 or status >= 500:
        return Attempt.retry(reason, retry_after_s(error.headers or {}, now), answered=True)
    return Attempt.failed(reason)


def described(error: ApiException) -> str:
    """LINE's `message` and `details` (why it refused; never a secret), else the reason."""
    try:
        body: Any = json.loads(error.body or b"")
    except ValueError:
        return str(error.reason)
    if not isinstance(body, dict):
        return str(error.reason)
    details = "; ".join(
        f"{d.get('property', '')}: {d.get('message', '')}"
        for d in body.get("details") or []
        if isinstance(d, dict)
    )
    return f"{body.get('message', '')} {details}".strip()[:400]


def is_invalid_reply_token(error: ApiException) -> bool:
    return error.status == 400 and described(error).lower().startswith(INVALID_REPLY_TOKEN)


class LineTransport:
    """Sends LINE rows; made in the lifespan (its HTTP session needs the running loop)."""

    platform = Platform.LINE

    def __init__(self, settings: Settings) -> None:
        config = Configuration(
            host=settings.line_api_url.rstrip("/"),
            access_token=settings.line_channel_access_token.get_secret_value(),
        )
        # Its default (5 a core) would queue the sender's sends in flight behind each other.
        config.connection_pool_maxsize = IN_FLIGHT_PER_PLATFORM
        self._client = AsyncApiClient(config)
        self.api = AsyncMessagingApi(self._client)
        """The process's one Messaging API client, shared with `LineProfiles`."""
        self._timeout = settings.delivery_timeout_s

    async def send(self, msg: Outgoing) -> Attempt:
        messages = list(msg.body)
        try:
            if msg.reply_token is not None:
                reply = {"replyToken": msg.reply_token, "messages": messages}
                return await self._reply(ReplyMessageRequest.from_dict(reply), msg.reply_tried)
            push = PushMessageRequest.from_dict({"to": msg.target, "messages": messages})
            return await self._push(push, msg.retry_key)
        except (ValidationError, ValueError) as error:  # our bug: LINE would answer 400
            return Attempt.failed(f"not a LINE message: {error}"[:400])
        except (TimeoutError, aiohttp.ClientError) as error:
            return Attempt.retry(f"{type(error).__name__}: {error}"[:400])

    async def _reply(self, request: ReplyMessageRequest, tried: bool) -> Attempt:
        try:
            await self.api.reply_message_with_http_info(request, _request_timeout=self._timeout)
        except ApiException as error:
            if not is_invalid_reply_token(error):
                return refusal(error, datetime.now(UTC))
            if tried:
                return Attempt.sent()  # our earlier reply, whose answer was lost, used it
            return Attempt.reply_unusable(f"LINE {error.status} {described(error)}")
        return Attempt.sent()

    async def _push(self, request: PushMessageRequest, retry_key: str) -> Attempt:
        try:
            await self.api.push_message_with_http_info(
                request, x_line_retry_key=retry_key, _request_timeout=self._timeout
            )
        except ApiException as error:
            if error.status == 409:  # this retry key was accepted before
                log.debug("LINE push with a repeated retry key (accepted %s)",
                          (error.headers or {}).get("x-line-accepted-request-id"))  # fmt: skip
                return Attempt.sent()
            return refusal(error, datetime.now(UTC))
        return Attempt.sent()

    async def aclose(self) -> None:
        await self._client.close()
