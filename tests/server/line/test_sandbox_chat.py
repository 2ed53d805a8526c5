"""The resident conversation against the LINE sandbox: a `chargenet server` process on each
store, the sandbox signing each webhook and receiving what the server sends, as LINE would.
What is asserted is what the resident saw, each accepted request once: the reply while its
token was fresh, or else a push."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.api.app import create_app
from server.line.messages import Postback
from server.line.prefill import poster_message
from server.registry import load_demo_registry
from tests.conditions import wait_until
from tests.sandboxes import Sandbox
from tests.server.api.conftest import live_ports
from tests.server.line.conftest import line_settings
from tests.server.running import ServerProcess
from tests.system.platforms import postback_data, text_of

NEAR_OZU_01 = (33.5070, 132.5433)


def seeded(database_url: str) -> None:
    """The demo stations, with ozu-01's and ozu-02's batteries live, before the server starts."""

    async def seed() -> None:
        app = create_app(line_settings(database_url))
        async with app.router.lifespan_context(app):
            await load_demo_registry(app.state.services.db)
            await live_ports(app)

    asyncio.run(seed())


@pytest.fixture
def server(tmp_path: Path, sandbox: Sandbox, database_url: str) -> Iterator[ServerProcess]:
    seeded(database_url)
    process = ServerProcess(tmp_path, "", 3600.0, database_url, env=sandbox.server_env)
    sandbox.point_at(process.url)
    yield process
    assert process.stop() == 0, process.log_text()


class Chat:
    """One resident in the sandbox: each action waits for the bot's next delivery."""

    def __init__(self, sandbox: Sandbox, user_id: str, language: str) -> None:
        self.sandbox = sandbox
        self.user_id = user_id
        self.language = language

    def seen(self) -> list[dict[str, Any]]:
        return self.sandbox.line_messages(self.user_id)

    def say(self, event: dict[str, Any], what: str) -> dict[str, Any]:
        before = len(self.seen())
        sent = self.sandbox.line_send(self.user_id, {"language": self.language, **event})
        assert sent["status"] == 200, sent
        return wait_until(lambda: self.seen()[before:], 20, what)[0]

    def text(self, text: str) -> dict[str, Any]:
        return self.say({"type": "text", "text": text}, f"the answer to {text!r}")

    def location(self) -> dict[str, Any]:
        latitude, longitude = NEAR_OZU_01
        return self.say({"type": "location", "latitude": latitude, "longitude": longitude,
                         "title": "現在地"}, "ranked options")  # fmt: skip

    def press(self, data: str) -> dict[str, Any]:
        return self.say({"type": "postback", "data": data}, f"the answer to {data}")


WORDS = {
    "ja": {"charge": "充電", "status": "予約確認", "cancel": "キャンセル", "greeting": "友だち追加",
           "ask": "現在地", "booked": "予約しました", "none": "予約はありません",
           "cancelled": "取り消しました", "already": "すでに予約", "changed": "変更しました",
           "station": "大洲市総合体育館", "ozu_01": "大洲市立大洲小学校"},
    "en": {"charge": "charge", "status": "status", "cancel": "cancel", "greeting": "Thanks for",
           "ask": "location", "booked": "Booked", "none": "no booking",
           "cancelled": "cancelled", "already": "already have", "changed": "changed",
           "station": "Ozu City General Gymnasium", "ozu_01": "Ozu Elementary School"},
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_whole_conversation_in_the_sandbox(
    server: ServerProcess, sandbox: Sandbox, lang: str
) -> None:
    words = WORDS[lang]
    chat = Chat(sandbox, f"U{secrets.token_hex(16)}", lang)
    assert words["greeting"] in text_of(chat.say({"type": "follow"}, "the greeting"))

    asked = chat.text(words["charge"])
    assert words["ask"] in text_of(asked)
    assert words["none"] in text_of(chat.text(words["status"]))  # mid-flow
    options = chat.location()
    assert words["ozu_01"] in text_of(options)
    first, second, *_ = postback_data(options, Postback.BOOK)
    ticket = chat.press(first)
    assert words["booked"] in text_of(ticket) and words["ozu_01"] in text_of(ticket)

    chat.text(words["charge"])  # a new flow: status and cancel in the middle of it
    status = chat.text(words["status"])
    assert words["ozu_01"] in text_of(status)
    again = chat.press(second)  # a second booking: the first, and the offer to change
    assert words["already"] in text_of(again)
    [change] = postback_data(again, Postback.CHANGE)
    assert words["changed"] in text_of(chat.press(change))
    assert words["cancelled"] in text_of(chat.text(words["cancel"]))
    assert words["none"] in text_of(chat.text(words["status"]))

    typed = chat.text(words["station"])  # a typed station name: its windows
    assert words["station"] in text_of(typed) and postback_data(typed, Postback.BOOK)
    scanned = chat.text(poster_message("ozu-01"))  # a poster's QR code: that station's
    assert words["ozu_01"] in text_of(scanned)
    assert words["booked"] in text_of(chat.press(postback_data(scanned, Postback.BOOK)[0]))

    seen = chat.seen()
    assert [d["via"] for d in seen] == ["reply"] * len(seen)  # all while the token was fresh
    assert len(seen) == 14  # each of the 14 actions answered once
    assert all(1 <= len(d["messages"]) <= 5 for d in seen)


@pytest.mark.slow
def test_a_redelivered_event_is_answered_once_in_the_sandbox(
    server: ServerProcess, sandbox: Sandbox
) -> None:
    chat = Chat(sandbox, f"U{secrets.token_hex(16)}", "ja")
    chat.text("予約確認")
    again = sandbox.line_redeliver(chat.user_id)
    assert again["status"] == 200
    sticker = chat.say({"type": "sticker"}, "the hint to a sticker")
    assert "充電" in text_of(sticker)
    assert len(chat.seen()) == 2  # the redelivery was not answered again
