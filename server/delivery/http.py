"""The platforms' HTTP edge: one aiohttp session per transport, every answer read whole.

Both platforms are called from the event loop that also answers LINE's webhooks, so a call's
CPU is the webhook's latency: aiohttp costs about a fifteenth of what httpx did per request
at the sender's concurrency (httpx's pool re-scans its waiting requests on every change).
Bodies go as compact UTF-8 JSON, as the platforms count their size limits. Every call has
an explicit timeout; the environment's proxies and `.netrc` are not read (`trust_env` off).
A transport reads an `Answer` (status, headers, body) and decides; a network failure or
timeout raises one of `HTTP_ERRORS`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiohttp

HTTP_ERRORS: Final = (aiohttp.ClientError, TimeoutError)
"""What a call raises when the platform could not be reached or did not answer in time."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A platform's answer, read whole."""

    status: int
    reason: str
    headers: Mapping[str, str]
    """Case-insensitive, as HTTP's are."""
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object; None when it is not one (the platforms answer errors
        with objects, proxies and load balancers with anything)."""
        try:
            found = json.loads(self.body)
        except ValueError:
            return None
        return found if isinstance(found, dict) else None


def encoded(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class PlatformHttp:
    """Calls to one platform: `base_url` joined to each path, `headers` on every call.

    The session is made on first use, in the running event loop (aiohttp binds it there).
    """

    def __init__(
        self,
        timeout_s: float,
        *,
        base_url: str = "",
        headers: Mapping[str, str] | None = None,
        connections: int = 100,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._headers = dict(headers or {})
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def post(
        self,
        url: str,
        *,
        payload: Any = None,
        form: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """POST `payload` as JSON, or `form` as a form, or `content`: JSON already encoded
        (and signed as it is)."""
        sent = dict(headers or {})
        if form is not None:
            return await self._call("POST", url, data=dict(form), headers=sent)
        sent["Content-Type"] = "application/json"
        body = encoded(payload) if content is None else content
        return await self._call("POST", url, data=body, headers=sent)

    async def get(self, url: str, *, timeout_s: float | None = None) -> Answer:
        within = aiohttp.ClientTimeout(total=timeout_s) if timeout_s is not None else None
        return await self._call("GET", url, within=within)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(
        self,
        method: str,
        url: str,
        *,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        within: aiohttp.ClientTimeout | None = None,
    ) -> Answer:
        session = self._session or self._open()
        async with session.request(
            method, self._base + url, data=data, headers=headers, timeout=within or self._timeout
        ) as response:
            body = await response.read()
            return Answer(response.status, response.reason or "", response.headers, body)

    def _open(self) -> aiohttp.ClientSession:
        self._session = aiohttp.ClientSession(
            headers=self._headers,
            connector=aiohttp.TCPConnector(limit=self._connections),
            trust_env=False,
            raise_for_status=False,
        )
        return self._session
