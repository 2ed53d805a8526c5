"""The bot's access token: a service-account JWT the LINE WORKS sandbox accepts, cached,
fetched again before it runs out, dropped when the API refuses it, secrets kept out of logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from server.delivery.http import PlatformHttp
from server.lineworks.errors import CredentialsMissing, PrivateKeyUnusable, TokenRefused
from server.lineworks.token import REFRESH_MARGIN_S, TokenSource, refresh_after_s
from server.settings import Settings
from tests.sandboxes import Sandbox
from tests.server.lineworks.works import issued_tokens, works_settings

pytestmark = pytest.mark.anyio
TTL_S = 86400.0
"""The sandbox's access tokens' lifetime (the platform's too)."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def works(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One sandbox process for the module: tests count the tokens they cause."""
    sandbox = Sandbox(tmp_path_factory.mktemp("sandbox"), token_ttl_s=TTL_S)
    yield sandbox
    sandbox.stop()


class Clock:
    """The token cache's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def http() -> AsyncIterator[PlatformHttp]:
    client = PlatformHttp(5.0)
    yield client
    await client.aclose()


def test_a_token_is_used_until_shortly_before_it_expires() -> None:
    assert refresh_after_s(86400) == 86400 - REFRESH_MARGIN_S
    assert refresh_after_s(3600) == 3600 - REFRESH_MARGIN_S
    assert refresh_after_s(60) == 30  # a short-lived token is renewed halfway


async def test_the_token_is_cached_and_fetched_again_before_expiry(
    works: Sandbox, http: PlatformHttp
) -> None:
    clock = Clock()
    tokens = TokenSource(works_settings(works), http, clock)
    before = issued_tokens(works)
    first = await tokens.token()
    assert await tokens.token() == first
    assert issued_tokens(works) == before + 1
    clock.now += TTL_S - REFRESH_MARGIN_S - 1
    assert await tokens.token() == first
    clock.now += 1  # inside the margin: a new one, while the old one still works
    second = await tokens.token()
    assert second != first
    assert issued_tokens(works) == before + 2


async def test_invalidate_drops_only_the_current_token(works: Sandbox, http: PlatformHttp) -> None:
    tokens = TokenSource(works_settings(works), http, Clock())
    first = await tokens.token()
    tokens.invalidate("some-older-token")
    assert await tokens.token() == first
    tokens.invalidate(first)
    assert await tokens.token() != first


async def test_concurrent_callers_share_one_fetch(works: Sandbox, http: PlatformHttp) -> None:
    tokens = TokenSource(works_settings(works), http, Clock())
    before = issued_tokens(works)
    got = await asyncio.gather(*(tokens.token() for _ in range(10)))
    assert len(set(got)) == 1 and issued_tokens(works) == before + 1


async def test_the_key_is_given_inline_or_as_a_file(
    works: Sandbox, http: PlatformHttp, tmp_path: Path
) -> None:
    pem = works.private_key_file.read_text()
    inline = works_settings(works, lineworks_private_key=SecretStr(pem),
                            lineworks_private_key_file=tmp_path / "absent.pem")  # fmt: skip
    assert await TokenSource(inline, http).token()
    assert await TokenSource(works_settings(works), http).token()  # the file
    absent = works_settings(works, lineworks_private_key_file=tmp_path / "absent.pem")
    with pytest.raises(PrivateKeyUnusable, match=r"absent\.pem"):
        await TokenSource(absent, http).token()
    garbled = works_settings(works, lineworks_private_key=SecretStr(pem[:200]))
    with pytest.raises(PrivateKeyUnusable) as unusable:
        await TokenSource(garbled, http).token()
    assert pem[40:80] not in str(unusable.value)


async def test_missing_credentials_are_named(http: PlatformHttp) -> None:
    with pytest.raises(CredentialsMissing) as missing:
        await TokenSource(Settings(lineworks_client_id="c"), http).token()
    assert "lineworks_client_secret" in missing.value.settings


async def test_a_refused_assertion_is_a_token_refused(works: Sandbox, http: PlatformHttp) -> None:
    before = issued_tokens(works)
    wrong = works_settings(works, lineworks_service_account="someone@else")
    with pytest.raises(TokenRefused) as refused:
        await TokenSource(wrong, http).token()
    assert (refused.value.status, refused.value.error) == (400, "invalid_grant")
    bad_secret = works_settings(works, lineworks_client_secret=SecretStr("nope"))
    with pytest.raises(TokenRefused) as refused:
        await TokenSource(bad_secret, http).token()
    assert (refused.value.status, refused.value.error) == (401, "invalid_client")
    assert issued_tokens(works) == before


async def test_no_secret_is_logged(
    works: Sandbox, http: PlatformHttp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = works_settings(works)
    tokens = TokenSource(settings, http, Clock())
    token = await tokens.token()
    tokens.invalidate(token)
    again = await tokens.token()
    with pytest.raises(TokenRefused):
        await TokenSource(works_settings(works, lineworks_client_secret=SecretStr("x")),
                          http).token()  # fmt: skip
    assert "token fetched" in caplog.text
    key_line = works.private_key_file.read_text().splitlines()[1]
    for secret in (token, again, settings.lineworks_client_secret.get_secret_value(), key_line):
        assert secret not in caplog.text
