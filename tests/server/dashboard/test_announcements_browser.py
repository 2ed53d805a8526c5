"""The announcements page in headless Chromium, against a real server: an operator signs in,
composes for a district, previews (counts and both languages' messages) and sends, and the
list shows the announcement's delivery counts and its time in Japan time, the browser set to
New York. The server has no LINE credentials here: the batches wait in the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from server.db.session import Database
from tests.conditions import wait_until
from tests.server.announcements.residents import Group, seed
from tests.server.running import TOKEN, ServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    running = ServerProcess(tmp_path, "", 2.0)
    try:
        running.admin("POST", "/api/v1/stations", {
            "id": "st-1", "name_ja": "大洲小学校", "name_en": "Ozu Elementary",
            "latitude": 33.5, "longitude": 132.5, "municipality": "大洲市",
        })  # fmt: skip
        running.admin("PUT", "/api/v1/districts?municipality=%E5%A4%A7%E6%B4%B2%E5%B8%82",
                      {"districts": ["肱南", "大洲"]})  # fmt: skip
        yield running
    finally:
        running.stop()


def seeded(database_url: str) -> None:
    async def main() -> None:
        db = Database(database_url)
        try:
            await seed(db, Group(2))
            await seed(db, Group(1, language="en"))
            await seed(db, Group(4, district="大洲"))
        finally:
            await db.dispose()

    asyncio.run(main())


def cell(browser: webdriver.Chrome, count: str) -> str:
    """The first row's count, read in one script: the list re-renders as counts change, so
    an element found and then read could be gone in between (a stale element)."""
    return str(browser.execute_script(
        "const c = document.querySelector(arguments[0]); return c ? c.innerText : '';",
        f'#list tbody tr td[data-count="{count}"]'))  # fmt: skip


def test_compose_preview_send_and_follow_the_counts(
    browser: webdriver.Chrome, server: ServerProcess
) -> None:
    seeded(server.database_url)
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
    browser.get(server.url + "/announcements")
    assert not browser.find_element(By.ID, "compose").is_displayed()
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "sign-in").click()
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, 'input[name="district"]'), 15,
               "the district boxes")  # fmt: skip
    browser.find_element(By.CSS_SELECTOR, 'input[name="district"][value="肱南"]').click()
    browser.find_element(By.ID, "text-ja").send_keys("大洲小学校で12:00から炊き出し")
    browser.find_element(By.ID, "preview").click()
    missing = "return document.getElementById('text-en').validity.valueMissing"
    assert browser.execute_script(missing) is True  # English is required: nothing was sent
    assert not browser.find_element(By.ID, "preview-out").is_displayed()
    browser.find_element(By.ID, "text-en").send_keys("Food at Ozu Elementary from 12:00")
    browser.find_element(By.ID, "preview").click()
    wait_until(lambda: browser.find_element(By.ID, "preview-out").is_displayed(), 15, "preview")
    assert "3" in browser.find_element(By.ID, "recipients").text
    konan = browser.find_element(By.CSS_SELECTOR, '[data-target="districts:肱南"]').text
    assert konan.endswith(": 3")
    ja = browser.find_element(By.CSS_SELECTOR, 'pre[data-language="ja"]').text
    en = browser.find_element(By.CSS_SELECTOR, 'pre[data-language="en"]').text
    assert ja == "【お知らせ】大洲市\n大洲小学校で12:00から炊き出し"
    assert en == "[Announcement] 大洲市\nFood at Ozu Elementary from 12:00"
    browser.find_element(By.ID, "send").click()
    wait_until(lambda: cell(browser, "pending") == "3", 15, "the sent announcement's counts")
    assert (cell(browser, "recipients"), cell(browser, "batches"), cell(browser, "sent")) == (
        "3", "2", "0")  # fmt: skip
    (listed,) = server.admin("GET", "/api/v1/announcements")["announcements"]
    sent_at = datetime.fromisoformat(listed["sent_at"]).astimezone(ZoneInfo("Asia/Tokyo"))
    row = browser.find_element(By.CSS_SELECTOR, "#list tbody tr").text
    assert f"{sent_at.month}/{sent_at.day} {sent_at:%H:%M}" in row
