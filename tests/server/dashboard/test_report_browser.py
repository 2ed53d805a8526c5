"""The dashboard's report download in headless Chromium, against a real server: a signed-in
operator gets the PDF as a file (the token in a header, not the URL); signed out, no form."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pypdfium2
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.server.running import TOKEN, ServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path, broker: Mosquitto) -> Iterator[ServerProcess]:
    running = ServerProcess(tmp_path, broker.url, 2.0)
    try:
        running.admin("POST", "/api/v1/stations", {
            "id": "st-1", "name_ja": "大洲小学校", "name_en": "Ozu Elementary",
            "latitude": 33.5, "longitude": 132.5, "municipality": "大洲市",
        })  # fmt: skip
        yield running
    finally:
        running.stop()


def downloaded(folder: Path) -> list[Path]:
    """Finished downloads only (Chromium writes `.crdownload` until done)."""
    return [p for p in folder.iterdir() if not p.name.endswith(".crdownload")]


def test_a_signed_in_operator_downloads_the_pdf(
    browser: webdriver.Chrome, server: ServerProcess, tmp_path: Path
) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)}
    )
    browser.get(server.url + "/")
    assert not browser.find_element(By.ID, "report").is_displayed()
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "sign-in").click()
    wait_until(lambda: browser.find_element(By.ID, "report").is_displayed(), 15, "the form")
    Select(browser.find_element(By.ID, "report-format")).select_by_value("pdf")
    browser.find_element(By.ID, "report-municipality").send_keys("大洲市")
    browser.find_element(By.ID, "report-download").click()
    [pdf] = wait_until(lambda: downloaded(folder), 30, "the PDF downloaded")
    assert pdf.name.startswith("chargenet-municipality-") and pdf.name.endswith("report.pdf")
    document = pypdfium2.PdfDocument(pdf.read_bytes())
    assert len(document) == 2
    assert "大洲市" in document[0].get_textpage().get_text_range()
    document.close()
    note = browser.find_element(By.ID, "crew-note").text
    assert pdf.name in note


def test_the_period_is_given_in_japan_time_with_the_browser_set_to_new_york(
    browser: webdriver.Chrome, server: ServerProcess
) -> None:
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
    browser.get(server.url + "/")
    end = wait_until(lambda: browser.find_element(By.ID, "report-end").get_attribute("value"),
                     15, "the period's default end")  # fmt: skip
    hour = datetime.now(UTC).astimezone(ZoneInfo("Asia/Tokyo")).replace(minute=0, second=0)
    assert end in {f"{hour + timedelta(hours=h):%Y-%m-%dT%H:%M}" for h in (0, 1)}  # an hour ahead
    sent = browser.execute_script("return stationTime.fromInput('2026-12-07T13:30').toISOString()")
    assert sent == "2026-12-07T04:30:00.000Z"
