"""Access tokens for the LINE WORKS bot API (API 2.0, service account authentication).

The service account's JWT (RS256, signed by pyjwt: iss = client id, sub = service account,
iat, exp an hour later) is exchanged at the token endpoint for an access token, which is
cached and fetched anew `REFRESH_MARGIN_S` before it runs out (half its lifetime when that
is shorter), and dropped by `invalidate` when the API answers 401 with it (revoked, or
expired early). One fetch at a time: senders waiting for a token share it. Neither the key,
the client secret nor a token is ever logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import jwt

from server.delivery.http import Answer, PlatformHttp
from server.lineworks.errors import CredentialsMissing, PrivateKeyUnusable, TokenRefused
from server.settings import Settings

log = logging.getLogger(__name__)

JWT_GRANT: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_LIFETIME_S: Final = 3600
"""The platform takes an assertion valid for at most 60 minutes."""
REFRESH_MARGIN_S: Final = 300.0
SCOPE: Final = "bot"


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str
    refresh_at: float
    """On the source's clock: past it, the next caller fetches a new token."""


def refresh_after_s(expires_in_s: float) -> float:
    """How long a token is used: up to `REFRESH_MARGIN_S` before it expires."""
    return expires_in_s - min(REFRESH_MARGIN_S, expires_in_s / 2)


def assertion(settings: Settings, private_key: str, now: int) -> str:
    """The service account's signed JWT, valid from `now` (UNIX seconds) for an hour."""
    claims = {
        "iss": settings.lineworks_client_id,
        "sub": settings.lineworks_service_account,
        "iat": now,
        "exp": now + JWT_LIFETIME_S,
    }
    try:
        return jwt.encode(claims, private_key, algorithm="RS256")
    except jwt.PyJWTError as error:
        raise PrivateKeyUnusable(type(error).__name__) from None


def private_key(settings: Settings) -> str:
    """The service account's PEM key, given inline or as a file."""
    inline = settings.lineworks_private_key.get_secret_value()
    if inline:
        return inline
    if settings.lineworks_private_key_file is not None:
        try:
            return settings.lineworks_private_key_file.read_text()
        except OSError as error:
            raise PrivateKeyUnusable(f"{error.strerror}: {error.filename}") from None
    raise CredentialsMissing(["lineworks_private_key or lineworks_private_key_file"])


def read_grant(response: Answer) -> tuple[str, float]:
    """The access token and its lifetime in seconds from the token endpoint's answer
    (`expires_in` is a string there, "86400"); TokenRefused for anything else."""
    body = response.json_object()
    if body is None:
        raise TokenRefused(response.status, "not a JSON object")
    if response.status != 200:
        raise TokenRefused(response.status, str(body.get("error") or body.get("code")))
    try:
        token, expires_in = str(body["access_token"]), float(body["expires_in"])
    except (KeyError, TypeError, ValueError):
        raise TokenRefused(response.status, "no access_token or expires_in") from None
    if not token or expires_in <= 0:
        raise TokenRefused(response.status, "an empty token")
    return token, expires_in


class TokenSource:
    """The bot's current access token: cached, refreshed before expiry, dropped on a 401."""

    def __init__(
        self,
        settings: Settings,
        http: PlatformHttp,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._http = http
        self._clock = clock
        self._current: AccessToken | None = None
        self._fetching = asyncio.Lock()

    async def token(self) -> str:
        """A token to call the API with; fetched when there is none or it is due."""
        async with self._fetching:
            current = self._current
            if current is None or self._clock() >= current.refresh_at:
                current = self._current = await self._fetch()
            return current.value

    def invalidate(self, token: str) -> None:
        """The API refused `token` (401): the next caller fetches a new one. A token
        already replaced by another caller's fetch is left alone."""
        if self._current is not None and self._current.value == token:
            self._current = None

    async def _fetch(self) -> AccessToken:
        settings = self._settings
        unset = [name for name, value in (
            ("lineworks_client_id", settings.lineworks_client_id),
            ("lineworks_client_secret", settings.lineworks_client_secret.get_secret_value()),
            ("lineworks_service_account", settings.lineworks_service_account),
        ) if not value]  # fmt: skip
        if unset:
            raise CredentialsMissing(unset)
        started = self._clock()
        form = {
            "assertion": assertion(settings, private_key(settings), int(time.time())),
            "grant_type": JWT_GRANT,
            "client_id": settings.lineworks_client_id,
            "client_secret": settings.lineworks_client_secret.get_secret_value(),
            "scope": SCOPE,
        }
        response = await self._http.post(settings.lineworks_token_url, form=form)
        token, expires_in = read_grant(response)
        log.info("LINE WORKS access token fetched, valid %.0f s", expires_in)
        return AccessToken(token, started + refresh_after_s(expires_in))
