"""The LINE transport: sends one outbox row as a reply, a push or a multicast (an
announcement's batch of at most 500 residents), over the Messaging API (HTTPS).

One HTTP session per process (`server.delivery.http`), pointed at `settings.line_api_url`
(the sandbox in the demo and the tests), every call with an explicit timeout. A row's body
is the platform's JSON already (`server.line.messages` builds it; the sandbox checks every
request against line-bot-sdk's models, as LINE would), so it goes as it is: turning it into
the SDK's models and back cost more CPU than the rest of a reply, and the SDK's HTTP session
reads ~/.netrc and the proxy environment in a thread on every call. What LINE's answers mean:
- a reply while the row's token is usable; 400 "Invalid reply token": if an earlier attempt
  of this row replied with it (`reply_tried`) and its outcome was lost, that reply was
  accepted (nobody else holds the token), so the row is sent; otherwise the token is of no
  use and the row is pushed next;
- a push or multicast with the row's `X-Line-Retry-Key`: 409 means LINE accepted that key
  before, so the row is sent;
- 429, 5xx, timeouts and network errors are retried later (`Retry-After` honoured);
  any other 4xx means LINE will never take the request, so the row failed, LINE's message
  kept.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote

from server.delivery.backoff import retry_after_s
from server.delivery.http import HTTP_ERRORS, Answer, PlatformHttp
from server.delivery.outbox import Platform
from server.delivery.sender import IN_FLIGHT_PER_PLATFORM
from server.delivery.transport import Attempt, Outgoing
from server.settings import Settings

log = logging.getLogger(__name__)

INVALID_REPLY_TOKEN: Final = "invalid reply token"
PROFILE_TIMEOUT_S: Final = 2.0
"""A reply token lasts a minute; the greeting must not wait long for a language."""


def refusal(response: Answer, now: datetime) -> Attempt:
    """What a non-2xx answer (other than the reply token's and the retry key's) means."""
    status = response.status
    reason = f"LINE {status} {described(response)}"
    if status == 429 or status >= 500:
        return Attempt.retry(reason, retry_after_s(response.headers, now), answered=True)
    return Attempt.failed(reason)


def described(response: Answer) -> str:
    """LINE's `message` and `details` (why it refused; never a secret), else the reason."""
    body = response.json_object()
    if body is None:
        return response.reason
    details = "; ".join(
        f"{d.get('property', '')}: {d.get('message', '')}"
        for d in body.get("details") or []
        if isinstance(d, dict)
    )
    return f"{body.get('message', '')} {details}".strip()[:400]


def is_invalid_reply_token(response: Answer) -> bool:
    return response.status == 400 and described(response).lower().startswith(INVALID_REPLY_TOKEN)


class LineTransport:
    """Sends LINE rows and reads profiles; made in the lifespan, `aclose()` on the way out."""

    platform = Platform.LINE

    def __init__(self, settings: Settings) -> None:
        token = settings.line_channel_access_token.get_secret_value()
        self._http = PlatformHttp(
            settings.delivery_timeout_s,
            base_url=settings.line_api_url,
            headers={"Authorization": f"Bearer {token}"},
            connections=IN_FLIGHT_PER_PLATFORM + 8,  # the sends in flight, profiles beside
        )

    async def send(self, msg: Outgoing) -> Attempt:
        messages = list(msg.body)
        try:
            if msg.reply_token is not None:
                reply = {"replyToken": msg.reply_token, "messages": messages}
                response = await self._http.post("/v2/bot/message/reply", payload=reply)
                return self._replied(response, msg.reply_tried)
            path, to = (("/v2/bot/message/multicast", list(msg.recipients)) if msg.recipients
                        else ("/v2/bot/message/push", msg.target))  # fmt: skip
            response = await self._http.post(
                path, payload={"to": to, "messages": messages},
                headers={"X-Line-Retry-Key": msg.retry_key},
            )  # fmt: skip
            return self._pushed(response)
        except HTTP_ERRORS as error:
            return Attempt.retry(f"{type(error).__name__}: {error}"[:400])

    async def language(self, user_id: str) -> str | None:
        """The resident's LINE language (`ja`, `en`, `en-US` ...) from their profile; None
        when unknown (LINE down, slow, the profile withheld): the chat goes on in Japanese.

        Webhook events carry no language; the profile does (that of the resident's LINE
        app). The bot asks once, when it meets a resident (`LineBot`'s `languages`)."""
        try:
            response = await self._http.get(
                f"/v2/bot/profile/{quote(user_id, safe='')}", timeout_s=PROFILE_TIMEOUT_S
            )
        except HTTP_ERRORS as error:
            log.info("no LINE profile language (%s)", type(error).__name__)
            return None
        if not response.ok:
            log.info("no LINE profile language (LINE %d)", response.status)
            return None
        profile = response.json_object()
        language = profile.get("language") if profile is not None else None
        return str(language) if language else None

    def _replied(self, response: Answer, tried: bool) -> Attempt:
        if response.ok:
            return Attempt.sent()
        if not is_invalid_reply_token(response):
            return refusal(response, datetime.now(UTC))
        if tried:
            return Attempt.sent()  # our earlier reply, whose answer was lost, used it
        return Attempt.reply_unusable(f"LINE {response.status} {described(response)}")

    def _pushed(self, response: Answer) -> Attempt:
        if response.ok:
            return Attempt.sent()
        if response.status == 409:  # this retry key was accepted before
            log.debug("LINE push with a repeated retry key (accepted %s)",
                      response.headers.get("x-line-accepted-request-id"))  # fmt: skip
            return Attempt.sent()
        return refusal(response, datetime.now(UTC))

    async def aclose(self) -> None:
        await self._http.aclose()
