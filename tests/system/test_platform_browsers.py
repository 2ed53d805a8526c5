"""The sandboxes' pages in headless Chromium, against a real server: a tester books a slot in
the resident chat (`/_sandbox/line/chat`) by clicking, and a crew member acknowledges an
alert in the LINE WORKS channel view (`/_sandbox/lineworks/view`) by clicking."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.sandboxes import CREW, Sandbox
from tests.server.running import ServerProcess
from tests.system.platforms import (
    CHANNELS,
    STATION,
    STEADY,
    Gateway,
    Resident,
    alerts,
    port_faults,
    start_server,
    text_of,
)

pytestmark = pytest.mark.slow
UNIT = "rs485-1.1"
PORTS = 4


@pytest.fixture
def gateway(broker: Mosquitto) -> Gateway:
    return Gateway(broker, UNIT, PORTS)


@pytest.fixture
def server(
    tmp_path: Path, broker: Mosquitto, sandbox: Sandbox, gateway: Gateway
) -> Iterator[ServerProcess]:
    process = start_server(tmp_path, broker.url, sandbox, units=(UNIT,), env=STEADY)
    gateway.publish()
    wait_until(
        lambda: len(process.get(f"/api/v1/stations/{STATION['id']}")["batteries"]) == 1,
        20, "the battery in the API",
    )  # fmt: skip
    yield process
    assert process.stop() == 0, process.log_text()


def find(browser: webdriver.Chrome, css: str) -> WebElement | None:
    """The first element matching `css`, or None while the page is (re)rendering it."""
    try:
        found = browser.find_elements(By.CSS_SELECTOR, css)
        return found[0] if found and found[0].is_displayed() else None
    except (StaleElementReferenceException, WebDriverException):
        return None


def shown(browser: webdriver.Chrome, css: str) -> str:
    """The text of the first element matching `css` ("" while there is none)."""
    element = find(browser, css)
    try:
        return str(element.text) if element is not None else ""
    except (StaleElementReferenceException, WebDriverException):
        return ""


def click(browser: webdriver.Chrome, css: str, what: str, timeout_s: float = 20) -> None:
    """Click the element once it is there; a re-render between finding and clicking is
    waited out."""

    def clicked() -> bool:
        element = find(browser, css)
        if element is None:
            return False
        try:
            element.click()
        except (StaleElementReferenceException, WebDriverException):
            return False
        return True

    wait_until(clicked, timeout_s, what)


def test_a_tester_books_a_slot_in_the_resident_chat_by_clicking(
    server: ServerProcess, sandbox: Sandbox, browser: webdriver.Chrome
) -> None:
    resident = Resident(sandbox, "U" + "c0ffee".ljust(32, "0"))
    before = places(server)
    browser.get(f"{sandbox.url}/_sandbox/line/chat?user={resident.user_id}")
    click(browser, "#follow", "the follow button")
    click(browser, '[data-quick-reply][data-label*="充電"]', "the greeting's charge quick reply")
    click(browser, '[data-quick-reply][data-action-type="location"]', "the location quick reply")
    click(browser, "[data-location-preset]", "a preset place near the shelter")
    click(browser, 'button[data-postback^="a=book"]', "an option's book button")

    [ticket, *_] = wait_until(lambda: [m for d in resident.deliveries() for m in d["messages"]
                                       if is_ticket(m)], 20, "the ticket")  # fmt: skip
    code = ticket["altText"].split()[1]
    assert [d["via"] for d in resident.deliveries()] == ["reply"] * 4  # greeting .. ticket
    wait_until(lambda: code in shown(browser, "#chat"), 15, "the ticket's code on the page")
    after = places(server)
    assert [after[w] - n for w, n in before.items() if after.get(w, n) != n] == [-1], after


def places(server: ServerProcess) -> dict[str, int]:
    """Free places per window at the shelter."""
    found = server.get(f"/api/v1/stations/{STATION['id']}/windows")["windows"]
    return {w["start"]: w["places"] for w in found}


def is_ticket(message: dict[str, Any]) -> bool:
    """The ticket Flex, whose alt text reads "充電予約チケット {code} {station} {window}"."""
    return str(message.get("altText", "")).startswith("充電予約チケット")


def test_a_crew_member_acknowledges_an_alert_by_clicking_its_button(
    server: ServerProcess, sandbox: Sandbox, gateway: Gateway, browser: webdriver.Chrome
) -> None:
    crew_channel = CHANNELS[("municipality", STATION["municipality"])]
    gateway.publish(2)
    wait_until(lambda: alerts(sandbox, crew_channel), 20, "the alert in the crew channel")
    [incident] = port_faults(server)
    [presser, *_] = CREW

    browser.get(f"{sandbox.url}/_sandbox/lineworks/view")
    click(browser, f'[data-channel="{crew_channel}"] button[data-postback="ack:{incident}"]',
          "the alert's acknowledge button")  # fmt: skip
    wait_until(lambda: find(browser, '[data-press-status][data-ok="true"]'), 15,
               "the view saying the server took the press")  # fmt: skip

    [acknowledged] = server.admin("GET", "/api/v1/incidents?state=acknowledged")["incidents"]
    assert (acknowledged["id"], acknowledged["acknowledged_by"]) == (
        incident, f"lineworks:{presser}")  # fmt: skip
    wait_until(lambda: "受付しました" in text_of(sandbox.works_user(presser)), 15,
               "the presser told their press worked")  # fmt: skip
    wait_until(lambda: "受付しました" in shown(browser, f'[data-user-talk="{presser}"]'), 15,
               "the answer in the presser's 1:1 talk on the page")  # fmt: skip
