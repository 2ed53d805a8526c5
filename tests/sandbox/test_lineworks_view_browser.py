"""The LINE WORKS sandbox's channel view in headless Chromium: a crew member picked at the
top presses an alert's button, and the bot server receives the signed callback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

from tests.browser import chromium
from tests.conditions import wait_until
from tests.sandbox.receiver import Receiver, receiving
from tests.sandboxes import Sandbox

pytestmark = pytest.mark.slow
ALERT: dict[str, Any] = {
    "type": "button_template",
    "contentText": "ポート故障 / port fault\n大洲小学校 port 3",
    "actions": [
        {"type": "message", "label": "対応する Acknowledge", "postback": "ack:42"},
        {"type": "message", "label": "解決 Resolve", "postback": "resolve:42"},
    ],
}


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    driver = chromium(tmp_path / "chrome", (1280, 900))
    yield driver
    driver.quit()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving("/lineworks/callback") as got:
        yield got


def send_as_bot(sandbox: Sandbox, channel_id: str, content: dict[str, Any]) -> None:
    """What the server does: a service-account token, then the message."""
    now = int(time.time())
    claims = {"iss": sandbox.works_client_id, "sub": sandbox.works_service_account,
              "iat": now, "exp": now + 3600}  # fmt: skip
    form = {
        "assertion": jwt.encode(claims, sandbox.private_key_file.read_text(), "RS256"),
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "client_id": sandbox.works_client_id, "client_secret": sandbox.works_client_secret,
        "scope": "bot",
    }  # fmt: skip
    granted = httpx.post(f"{sandbox.url}/lineworks/oauth2/v2.0/token", data=form)
    token = granted.json()["access_token"]
    sent = httpx.post(
        f"{sandbox.url}/lineworks/v1.0/bots/{sandbox.works_bot_id}/channels/{channel_id}/messages",
        json={"content": content}, headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert sent.status_code == 201, sent.text


def test_a_crew_member_presses_a_button_in_the_channel_view(
    sandbox: Sandbox, receiver: Receiver, browser: webdriver.Chrome
) -> None:
    sandbox.set_urls(lineworks_callback_url=receiver.url)
    send_as_bot(sandbox, "crew-ozu", ALERT)
    browser.get(f"{sandbox.url}/_sandbox/lineworks/view")
    channel = '[data-channel="crew-ozu"]'
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, f'{channel} [data-postback]'),
               10, "the alert's buttons in the channel")  # fmt: skip
    assert "大洲小学校 port 3" in browser.find_element(By.CSS_SELECTOR, channel).text
    assert browser.find_elements(By.CSS_SELECTOR, '[data-channel="hq-ehime"]')  # empty, listed
    Select(browser.find_element(By.CSS_SELECTOR, "[data-user-picker]")).select_by_value(
        "crew-suzuki")  # fmt: skip
    button = browser.find_element(By.CSS_SELECTOR, f'{channel} [data-postback="ack:42"]')
    assert button.text == "対応する Acknowledge"
    button.click()
    wait_until(lambda: receiver.received, 10, "the callback at the bot server")
    [(headers, body)] = receiver.received
    digest = hmac.new(sandbox.works_bot_secret.encode(), body, hashlib.sha256).digest()
    assert headers["x-works-signature"] == base64.b64encode(digest).decode()
    assert headers["x-works-botid"] == sandbox.works_bot_id
    event = json.loads(body)
    assert event["source"]["userId"] == "crew-suzuki"
    assert event["source"]["channelId"] == "crew-ozu"
    assert event["content"] == {"type": "text", "text": "対応する Acknowledge",
                                "postback": "ack:42"}  # fmt: skip
    status = browser.find_element(By.CSS_SELECTOR, "[data-press-status]")
    wait_until(lambda: status.get_attribute("data-status") == "200", 10, "the server's answer")
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, f'{channel} [data-press]'), 10,
               "the press shown in the channel")  # fmt: skip
