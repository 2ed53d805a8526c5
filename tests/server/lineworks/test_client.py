"""The LINE WORKS transport against the sandbox process: rows sent to channels and users,
a token shared and renewed on 401 (expired, revoked) once per send, 429/5xx/timeouts and
network errors retried, refusals failed, and no secret in the logs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from server.delivery.outbox import Platform
from server.delivery.transport import Attempt, Outcome, Outgoing
from server.lineworks.client import WorksTransport, message_url
from tests.conditions import async_wait_until
from tests.sandboxes import Sandbox
from tests.server.lineworks.works import issued_tokens, works_settings

pytestmark = pytest.mark.anyio
ALERT: dict[str, Any] = {
    "type": "button_template",
    "contentText": "ポート故障 / port fault",
    "actions": [{"type": "message", "label": "対応する Acknowledge", "postback": "ack:7"}],
}
CHANNEL = "crew-ozu"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def works(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One sandbox process for the module, forgetting messages and faults between tests."""
    sandbox = Sandbox(tmp_path_factory.mktemp("sandbox"))
    yield sandbox
    sandbox.stop()


@pytest.fixture
async def transport(works: Sandbox) -> AsyncIterator[WorksTransport]:
    works.reset()
    sender = WorksTransport(works_settings(works))
    yield sender
    await sender.aclose()


def outgoing(target: str, content: dict[str, Any] = ALERT) -> Outgoing:
    return Outgoing(id=1, platform=Platform.LINEWORKS, target=target, body=(content,),
                    reply_token=None, reply_tried=False, retry_key="unused", attempt=1)  # fmt: skip


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"].get("text") or m["content"]["contentText"] for m in messages]


def test_targets_name_their_talk() -> None:
    api = "https://www.worksapis.com/v1.0/"
    assert message_url(api, "123", "channel:ch 1") == (
        "https://www.worksapis.com/v1.0/bots/123/channels/ch%201/messages")  # fmt: skip
    assert message_url(api, "123", "user:a@b/c") == (
        "https://www.worksapis.com/v1.0/bots/123/users/a%40b%2Fc/messages")  # fmt: skip
    assert message_url(api, "123", "channel:") is None
    assert message_url(api, "123", "room:1") is None


async def test_messages_reach_channels_and_users_on_one_token(
    works: Sandbox, transport: WorksTransport
) -> None:
    before = issued_tokens(works)
    text = {"type": "text", "text": "対応を受付しました / acknowledged"}
    assert await transport.send(outgoing(f"channel:{CHANNEL}")) == Attempt.sent()
    assert await transport.send(outgoing("user:crew-tanaka", text)) == Attempt.sent()
    assert await transport.send(outgoing(f"channel:{CHANNEL}", text)) == Attempt.sent()
    assert [m["content"] for m in works.works_channel(CHANNEL)] == [ALERT, text]
    assert [m["content"] for m in works.works_user("crew-tanaka")] == [text]
    assert issued_tokens(works) == before + 1


@pytest.mark.parametrize("lost", ["expired", "revoked"])
async def test_a_lost_token_is_renewed_and_the_message_sent_once(
    works: Sandbox, transport: WorksTransport, lost: str
) -> None:
    assert await transport.send(outgoing(f"channel:{CHANNEL}")) == Attempt.sent()
    before = issued_tokens(works)
    gone = works.works_expire_tokens() if lost == "expired" else works.works_revoke_tokens()
    assert gone >= 1
    assert await transport.send(outgoing(f"channel:{CHANNEL}")) == Attempt.sent()
    assert len(works.works_channel(CHANNEL)) == 2
    assert issued_tokens(works) == before + 1


async def test_a_second_401_is_retried_later(works: Sandbox, transport: WorksTransport) -> None:
    works.faults("lineworks", count=2, status=401)
    attempt = await transport.send(outgoing(f"channel:{CHANNEL}"))
    assert attempt.outcome is Outcome.RETRY and "401" in (attempt.error or "")
    assert await transport.send(outgoing(f"channel:{CHANNEL}")) == Attempt.sent()
    assert len(works.works_channel(CHANNEL)) == 1


async def test_server_errors_and_rate_limits_are_retried(
    works: Sandbox, transport: WorksTransport
) -> None:
    await transport.tokens.token()
    works.faults("lineworks", status=500)
    works.faults("lineworks", status=429, retry_after_s=7)
    works.faults("lineworks", status=503, calls=("token",))
    down = await transport.send(outgoing(f"channel:{CHANNEL}"))
    assert (down.outcome, down.retry_after_s) == (Outcome.RETRY, None)
    assert "500" in (down.error or "")
    limited = await transport.send(outgoing(f"channel:{CHANNEL}"))
    assert (limited.outcome, limited.retry_after_s) == (Outcome.RETRY, 7)
    transport.tokens.invalidate(await transport.tokens.token())
    no_token = await transport.send(outgoing(f"channel:{CHANNEL}"))
    assert no_token.outcome is Outcome.RETRY
    assert "token endpoint answered 503 SERVICE_UNAVAILABLE" in (no_token.error or "")
    assert await transport.send(outgoing(f"channel:{CHANNEL}")) == Attempt.sent()
    assert len(works.works_channel(CHANNEL)) == 1


async def test_a_hang_times_out_and_is_retried_undelivered(
    works: Sandbox, transport: WorksTransport
) -> None:
    await transport.tokens.token()
    works.faults("lineworks", delay_s=3.0)  # the client gives up after 1 s
    hung = await transport.send(outgoing(f"channel:{CHANNEL}"))
    assert hung.outcome is Outcome.RETRY and "Timeout" in (hung.error or "")
    await async_wait_until(  # in the loop, which closes the connection given up on
        lambda: works.call("GET", "/_sandbox/lineworks/faults")["dropped"] == 1, 10,
        "the sandbox to drop the call its caller gave up on",
    )  # fmt: skip
    assert await transport.send(outgoing(f"channel:{CHANNEL}")) == Attempt.sent()
    assert len(works.works_channel(CHANNEL)) == 1


async def test_a_refused_message_failed_for_good(works: Sandbox, transport: WorksTransport) -> None:
    too_long = {"type": "text", "text": "x" * 2001}
    invalid = await transport.send(outgoing(f"channel:{CHANNEL}", too_long))
    assert invalid.outcome is Outcome.FAILED
    assert "400 INVALID_PARAMETER" in (invalid.error or "")
    not_a_talk = await transport.send(outgoing("room:1"))
    assert not_a_talk.outcome is Outcome.FAILED
    other_bot = WorksTransport(works_settings(works, lineworks_bot_id="999"))
    try:
        unknown = await other_bot.send(outgoing(f"channel:{CHANNEL}"))
    finally:
        await other_bot.aclose()
    assert unknown.outcome is Outcome.FAILED and "404" in (unknown.error or "")
    assert works.works_channel(CHANNEL) == []


async def test_an_unreachable_or_unconfigured_platform_is_retried(works: Sandbox) -> None:
    nowhere = WorksTransport(works_settings(works, lineworks_token_url="http://127.0.0.1:9/t"))
    no_bot = WorksTransport(works_settings(works, lineworks_bot_id=""))
    try:
        unreachable = await nowhere.send(outgoing(f"channel:{CHANNEL}"))
        unconfigured = await no_bot.send(outgoing(f"channel:{CHANNEL}"))
    finally:
        await nowhere.aclose()
        await no_bot.aclose()
    assert unreachable.outcome is Outcome.RETRY and "ConnectorError" in (unreachable.error or "")
    assert unconfigured == Attempt.retry("lineworks_bot_id is not set")


async def test_no_secret_is_logged(
    works: Sandbox, transport: WorksTransport, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert await transport.send(outgoing(f"channel:{CHANNEL}")) == Attempt.sent()
    first = await transport.tokens.token()
    works.works_revoke_tokens()
    assert await transport.send(outgoing(f"channel:{CHANNEL}")) == Attempt.sent()
    second = await transport.tokens.token()
    works.faults("lineworks", status=500)
    await transport.send(outgoing(f"channel:{CHANNEL}"))
    wrong = WorksTransport(works_settings(works, lineworks_client_secret=SecretStr("wrong")))
    try:
        assert (await wrong.send(outgoing(f"channel:{CHANNEL}"))).outcome is Outcome.RETRY
    finally:
        await wrong.aclose()
    assert "deferred" in caplog.text and "HTTP Request" in caplog.text
    settings = works_settings(works)
    secrets = [first, second, settings.lineworks_client_secret.get_secret_value(),
               settings.lineworks_bot_secret.get_secret_value(),
               works.private_key_file.read_text().splitlines()[1]]  # fmt: skip
    for secret in secrets:
        assert secret not in caplog.text
