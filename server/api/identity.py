"""Who books: `POST /api/v1/bookings` carries a verified identity, or is refused (401).

Anyone on the internet reaches the public API, so a resident id in the body proves nothing:
without this anyone could book in another's name or fill every window with invented ids.
A booking comes from one of three clients, and the resident id must be one it vouches for:

- a LINE Login app (LIFF): `X-Line-Id-Token`, verified at LINE's own endpoint
  (`POST {line_api_url}/oauth2/v2.1/verify` with `line_login_channel_id`); the resident is
  `line:{sub}`, the same resident the chat books for (LINE residents in the chat are
  vouched for by the webhook's signature and never come here);
- a partner app: `X-Api-Key`, whose SHA-256 is in `partner_key_hashes` (the server keeps
  no key); the partner books for its own residents, ids `{partner}:...`;
- desk staff booking for a walk-in: `Authorization: Bearer` with an operator's token (HQ
  or a municipality's; not a viewer's, `server.api.auth`); any id.

Each client is then held to a sliding-window rate (the `limits` library), and so is each
resident a LINE ID token proves: 429 with `Retry-After` beyond it. A partner answers for
its own residents' rate (and each resident holds one booking at a time): a counter per
partner resident would cost the server a third more CPU in a burst, as `limits`' memory
store re-scans every key every 10 ms. The limits are per process.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from server.access.tokens import Operators
from server.api.auth import bearer, operator_of
from server.delivery.http import HTTP_ERRORS, PlatformHttp
from server.errors import Forbidden, RateLimited, Unauthorized, Unavailable
from server.settings import Settings

LINE_RESIDENT: Final = "line:"
VERIFY_PATH: Final = "/oauth2/v2.1/verify"
DESK: Final = "desk"
BOOKINGS: Final = "/api/v1/bookings"
"""The path a desk's booking is audited under."""
LINE_LOGIN: Final = "line-login"

partner_key = APIKeyHeader(name="X-Api-Key", auto_error=False,
                           description="a partner app's API key")  # fmt: skip
line_id_token = APIKeyHeader(name="X-Line-Id-Token", auto_error=False,
                             description="a LINE Login (LIFF) ID token")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Client:
    """Who is booking, authenticated; `Identities.vouch` says for whom it may."""

    name: str
    """`line-login`, `partner:{name}` or `desk:{operator}`."""
    resident: str | None = None
    """The one resident an ID token proves (`line:{sub}`)."""
    prefix: str | None = None
    """A partner's resident ids (`{partner}:`)."""


async def booking_client(
    request: Request,
    _desk: Annotated[object, Depends(bearer)],
    _partner: Annotated[str | None, Depends(partner_key)],
    _line: Annotated[str | None, Depends(line_id_token)],
) -> Client:
    """The route's dependency (the parameters name the three ways in the OpenAPI): 401
    before the body is even read, as the booking lane does."""
    identities: Identities = request.app.state.services.identities
    return await identities.authenticate(request.headers)


class Identities:
    """One per app: `authenticate` and `vouch` for every booking, `aclose` at the end."""

    def __init__(self, settings: Settings, operators: Operators) -> None:
        self._settings = settings
        self._operators = operators
        self._partners = {digest.lower(): name for name, digest in
                          settings.partner_key_hashes.items()}  # fmt: skip
        self._line = PlatformHttp(settings.delivery_timeout_s, base_url=settings.line_api_url)
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._per_client = RateLimitItemPerMinute(settings.booking_client_requests_per_min)
        self._per_resident = RateLimitItemPerMinute(settings.booking_requests_per_min)

    async def authenticate(self, headers: Mapping[str, str]) -> Client:
        """The client the credentials prove. Raises Unauthorized, Unavailable (LINE could
        not verify an ID token) or RateLimited (the client's own rate)."""
        client = await self._client(headers)
        self._hold(self._per_client, "client", client.name)
        return client

    def vouch(self, client: Client, resident_id: str) -> None:
        """Raises Forbidden (not a resident the client books for) or RateLimited (an ID
        token's resident beyond their rate)."""
        if client.resident is not None and resident_id != client.resident:
            raise Forbidden(f"{client.name} books for {client.resident} only, not {resident_id!r}")
        if client.prefix is not None and not resident_id.startswith(client.prefix):
            raise Forbidden(f"{client.name} books for {client.prefix}... only, not {resident_id!r}")
        if client.resident is not None:
            self._hold(self._per_resident, "resident", resident_id)

    async def aclose(self) -> None:
        await self._line.aclose()

    async def _client(self, headers: Mapping[str, str]) -> Client:
        token = headers.get("x-line-id-token")
        if token:
            return Client(LINE_LOGIN, resident=LINE_RESIDENT + await self._verified_sub(token))
        key = headers.get("x-api-key")
        if key:
            partner = self._partners.get(hashlib.sha256(key.encode()).hexdigest())
            if partner is None:
                raise Unauthorized("X-Api-Key is not a partner's key")
            return Client(f"partner:{partner}", prefix=f"{partner}:")
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise Unauthorized("a booking needs X-Line-Id-Token, X-Api-Key or an operator's token")
        operator = await operator_of(self._settings, self._operators, given,
                                     headers.get("x-actor"), "POST", BOOKINGS)  # fmt: skip
        operator.require_write()
        return Client(f"{DESK}:{operator.name}")

    async def _verified_sub(self, token: str) -> str:
        channel = self._settings.line_login_channel_id
        if not channel:
            raise Unauthorized("LINE ID tokens are not accepted (no LINE Login channel set)")
        try:
            answer = await self._line.post(
                VERIFY_PATH, form={"id_token": token, "client_id": channel}
            )
        except HTTP_ERRORS as exc:
            raise Unavailable(f"LINE's ID token check failed ({type(exc).__name__})") from None
        found = answer.json_object() or {}
        if answer.status == 400:
            raise Unauthorized(f"LINE refused the ID token: {found.get('error_description')}")
        sub = found.get("sub")
        if not answer.ok or not isinstance(sub, str) or found.get("aud") != channel:
            raise Unavailable(f"LINE's ID token check answered {answer.status}")
        return sub

    def _hold(self, limit: RateLimitItem, kind: str, who: str) -> None:
        if not self._limiter.hit(limit, kind, who):
            reset = self._limiter.get_window_stats(limit, kind, who).reset_time
            wait = max(1, int(reset - time.time()) + 1)
            raise RateLimited(f"too many booking requests for this {kind}; try in {wait} s", wait)
