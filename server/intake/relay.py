"""Hands the intake's events on to the server (`POST /line/relayed`), oldest first.

One batch is in flight at a time, so a resident's events reach the server in the order
they came. A batch is forgotten only once the server answered 2xx (it stored them);
until then it is sent again, after a backoff with jitter while the server is down or
refuses. The server deduplicates by event id, so a batch sent twice (its answer lost) is
processed once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from server.delivery.backoff import retry_delay_s
from server.delivery.http import HTTP_ERRORS, PlatformHttp
from server.intake import wire
from server.intake.pending import Pending

log = logging.getLogger(__name__)

BACKOFF_CAP_S: Final = 5.0
"""The server is ours and near: trying every few seconds costs it nothing, and once it is
back the residents' events wait no longer than this (the platforms' cap, minutes, would
turn fresh replies into pushes)."""
MAX_RELAY: Final = 200
"""Events a hand-on carries at most: 200 of the longest texts stay under the server's
1 MB body limit."""


class Relay:
    """`run` until cancelled."""

    def __init__(self, pending: Pending, http: PlatformHttp, secret: str) -> None:
        self._pending = pending
        self._http = http
        self._secret = secret
        self.failures = 0
        """Hand-ons that failed in a row (0 while the server takes them)."""
        self.handed_on = 0
        self.failing_since: float | None = None

    async def run(self) -> None:
        while True:
            batch = await self._pending.waiting(MAX_RELAY)
            body = wire.encode([item for _, item in batch])
            problem = await self._hand_on(body)
            if problem is None:
                if self.failures:
                    log.info("the server takes events again after %d failures", self.failures)
                self.failures, self.failing_since = 0, None
                self.handed_on += len(batch)
                await self._pending.done(batch[-1][0])
                continue
            self.failures += 1
            self.failing_since = self.failing_since or time.time()
            log.warning("handing %d events on failed (%s, %d in a row); they wait in the journal",
                        len(batch), problem, self.failures)  # fmt: skip
            await asyncio.sleep(retry_delay_s(self.failures, BACKOFF_CAP_S))

    async def _hand_on(self, body: bytes) -> str | None:
        """None when the server stored them; else what went wrong."""
        headers = {wire.SIGNATURE_HEADER: wire.signature(self._secret, body)}
        try:
            answer = await self._http.post(wire.RELAYED_PATH, content=body, headers=headers)
        except HTTP_ERRORS as exc:
            return type(exc).__name__
        return None if answer.ok else f"HTTP {answer.status}"
