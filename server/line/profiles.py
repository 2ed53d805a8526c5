"""A resident's LINE language, from the Messaging API's profile (`GET /v2/bot/profile/{id}`).

Webhook events carry no language; the profile does (the language of the resident's LINE
app). The bot asks once, when it meets a resident (their follow, or their first message),
and keeps the answer in `line_residents`; a resident who chose a language keeps theirs.
Anything but an answer (LINE down, slow, the profile withheld) is None: Japanese, the
account's language, and the conversation goes on.
"""

from __future__ import annotations

import logging
from typing import Final

import aiohttp
from linebot.v3.messaging import ApiException, AsyncMessagingApi

log = logging.getLogger(__name__)

TIMEOUT_S: Final = 2.0
"""A reply token lasts a minute; the greeting must not wait long for a language."""


class LineProfiles:
    """Asks through the process's one Messaging API client (the LINE transport's)."""

    def __init__(self, api: AsyncMessagingApi, timeout_s: float = TIMEOUT_S) -> None:
        self._api = api
        self._timeout_s = timeout_s

    async def language(self, user_id: str) -> str | None:
        """The resident's LINE language (`ja`, `en`, `en-US` ...), None when unknown."""
        try:
            profile = await self._api.get_profile(user_id, _request_timeout=self._timeout_s)
        except (ApiException, TimeoutError, aiohttp.ClientError, ValueError) as error:
            log.info("no LINE profile language (%s)", type(error).__name__)
            return None
        language = getattr(profile, "language", None)
        return str(language) if language else None
