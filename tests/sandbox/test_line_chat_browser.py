"""The LINE sandbox's web chat in headless Chromium: a tester types, taps quick replies,
shares a preset or a clicked location, taps a Flex carousel's postback button and adds a
second resident; each action reaches the webhook as LINE sends it. The test plays the bot
through the Messaging API, so no server is needed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from tests.conditions import wait_until
from tests.sandbox.receiver import Receiver, receiving
from tests.sandboxes import Sandbox

pytestmark = pytest.mark.slow
USER = "U" + "c" * 32


@pytest.fixture
def receiver(sandbox: Sandbox) -> Iterator[Receiver]:
    with receiving("/line/webhook") as got:
        sandbox.set_urls(line_webhook_url=got.url)
        yield got


def events(receiver: Receiver) -> list[dict[str, Any]]:
    return [e for _, body in receiver.received for e in json.loads(body)["events"]]


def arrived(receiver: Receiver, count: int, what: str) -> dict[str, Any]:
    """The `count`th event the webhook received."""
    return wait_until(lambda: events(receiver)[count - 1 :], 15, what)[0]


def click(page: webdriver.Chrome, css: str, what: str) -> None:
    """Click the element once it is shown, scrolled clear of the sticky header; a re-render
    in between is waited out."""

    def clicked() -> bool:
        try:
            found = page.find_elements(By.CSS_SELECTOR, css)
            if not found or not found[0].is_displayed():
                return False
            page.execute_script("arguments[0].scrollIntoView({block: 'center'})", found[0])
            found[0].click()
        except (StaleElementReferenceException, WebDriverException):
            return False
        return True

    wait_until(clicked, 15, what)


def bot(sandbox: Sandbox, path: str, body: dict[str, Any]) -> None:
    """The bot's call to the Messaging API."""
    headers = {"Authorization": f"Bearer {sandbox.line_access_token}"}
    answer = httpx.post(f"{sandbox.url}/line/v2/bot/message/{path}", json=body, headers=headers)
    assert answer.status_code == 200, answer.text


def option(n: int) -> dict[str, Any]:
    book = {"type": "postback", "label": "予約する", "data": f"a=book&o={n}",
            "displayText": f"予約: 駅 {n}"}  # fmt: skip
    return {"type": "bubble", "size": "kilo",
            "body": {"type": "box", "layout": "vertical", "contents": [
                {"type": "text", "text": f"駅 {n}", "weight": "bold"},
                {"type": "box", "layout": "baseline", "contents": [
                    {"type": "text", "text": "枠", "flex": 2},
                    {"type": "text", "text": "13:30〜14:00", "flex": 5}]}]},
            "footer": {"type": "box", "layout": "vertical", "contents": [
                {"type": "button", "style": "primary", "action": book}]}}  # fmt: skip


def test_a_tester_plays_residents_by_clicking(
    sandbox: Sandbox,
    receiver: Receiver,
    browser: webdriver.Chrome,
) -> None:
    browser.get(f"{sandbox.url}/_sandbox/line/chat?user={USER}")
    wait_until(lambda: browser.find_element(By.ID, "send").is_enabled(), 15, "the chat ready")
    browser.find_element(By.ID, "text").send_keys("充電")
    click(browser, "#send", "send")
    said = arrived(receiver, 1, "the typed text as a webhook")
    assert (said["message"]["text"], said["source"]["userId"]) == ("充電", USER)
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, '#send-status[data-ok="true"]'),
               15, "the page saying the server took it")  # fmt: skip

    location = {"type": "action", "action": {"type": "location", "label": "位置情報を送る"}}
    status = {
        "type": "action",
        "action": {"type": "message", "label": "予約確認", "text": "予約確認"},
    }
    ask = {"type": "text", "text": "どこにいますか"}
    both = {**ask, "quickReply": {"items": [location, status]}}
    bot(sandbox, "reply", {"replyToken": said["replyToken"], "messages": [both]})
    click(browser, '[data-quick-reply][data-label="予約確認"]', "the message quick reply")
    assert arrived(receiver, 2, "the quick reply's text")["message"]["text"] == "予約確認"
    bot(sandbox, "push", {"to": USER, "messages": [{**ask, "quickReply": {"items": [location]}}]})
    click(browser, '[data-quick-reply][data-action-type="location"]', "the location quick reply")
    click(browser, '[data-location-preset="大洲駅"]', "a preset place")
    shared = arrived(receiver, 3, "the preset location")["message"]
    assert (shared["type"], shared["title"], shared["latitude"]) == ("location", "大洲駅", 33.508)

    carousel = {"type": "carousel", "contents": [option(1), option(2)]}
    bot(sandbox, "push", {"to": USER, "messages": [
        {"type": "flex", "altText": "空いている枠", "contents": carousel}]})  # fmt: skip
    click(browser, '[data-postback="a=book&o=2"]', "the second bubble's book button")
    assert arrived(receiver, 4, "the postback")["postback"]["data"] == "a=book&o=2"
    wait_until(lambda: "予約: 駅 2" in browser.find_element(By.ID, "chat").text, 15,
               "the button's display text shown as the resident's")  # fmt: skip
    assert "13:30〜14:00" in browser.find_element(By.ID, "chat").text  # the Flex is readable
    click(browser, "#redeliver", "redeliver the last event")
    again = arrived(receiver, 5, "the redelivery")
    assert again["deliveryContext"]["isRedelivery"] is True
    assert again["webhookEventId"] == events(receiver)[3]["webhookEventId"]

    click(browser, "#location", "the location button")
    area = browser.find_element(By.ID, "map")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", area)
    ActionChains(browser).move_to_element_with_offset(area, 10, -10).click().perform()
    click(browser, "#send-location", "send the clicked point")
    pinned = arrived(receiver, 6, "the clicked location")["message"]
    assert 33.49 < pinned["latitude"] < 33.525 and 132.525 < pinned["longitude"] < 132.57

    browser.find_element(By.ID, "add-resident-name").send_keys("田中")
    click(browser, "#add-resident", "add a resident")
    followed = arrived(receiver, 7, "the new resident's follow")
    assert followed["type"] == "follow" and followed["source"]["userId"] != USER
    wait_until(lambda: len(browser.find_elements(By.CSS_SELECTOR, "[data-resident]")) == 2, 15,
               "both residents to pick from")  # fmt: skip
    newcomer = followed["source"]["userId"]
    headers = {"Authorization": f"Bearer {sandbox.line_access_token}"}
    profile = httpx.get(f"{sandbox.url}/line/v2/bot/profile/{newcomer}", headers=headers)
    assert profile.json()["displayName"] == "田中"

    click(browser, '[id="trouble"] summary', "open the trouble panel")
    click(browser, '[data-fault="500"]', "LINE down for the next 5 sends")
    wait_until(lambda: "queued: 5" in browser.find_element(By.ID, "send-status").text, 15,
               "the faults queued")  # fmt: skip
    refused = httpx.post(f"{sandbox.url}/line/v2/bot/message/push", headers=headers,
                         json={"to": newcomer, "messages": [ask]})  # fmt: skip
    assert refused.status_code == 500
