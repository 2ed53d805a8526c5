"""The whole resident conversation over HTTP with signed webhooks, on both stores, in
Japanese and English: what the bot enqueued for each resident is what they would read."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from server.line.messages import Postback, read_postback
from tests.server.line.conftest import Resident, Sent, postbacks

pytestmark = pytest.mark.anyio


def book_buttons(sent: list[Sent]) -> list[str]:
    return [d for d in postbacks(sent) if (p := read_postback(d)) and p.action is Postback.BOOK]


async def test_japanese_flow(app: FastAPI, client: httpx.AsyncClient) -> None:
    hana = Resident(app, client, "Uhana")
    greeted = await hana.follow()
    assert "充電" in greeted[0].texts[0]
    assert greeted[0].reply_token is not None
    asked = await hana.text("充電")
    assert "現在地" in asked[0].texts[0]
    offered = await hana.location()
    assert "予約する" in offered[0].flat()
    buttons = book_buttons(offered)
    assert 1 <= len(buttons) <= 3
    ticket = await hana.postback(buttons[0])
    assert "予約しました" in ticket[0].texts[0]
    assert "コード" in ticket[0].flat()
