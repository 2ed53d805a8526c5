"""The residents' public page in headless Chromium at a phone's width, the browser's location
set through the DevTools protocol and the map's tiles unreachable."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

from tests.browser import PHONE
from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.server.running import ServerProcess
from tests.system.platforms import GW, STEADY, Gateway

pytestmark = pytest.mark.slow
NO_TILES = "http://127.0.0.1:9/{z}/{x}/{y}.png"
"""Nothing listens on the discard port: every tile fails, as without a network."""
STATIONS = {"st-north": 33.60, "st-middle": 33.50, "st-south": 33.40}
"""Three shelters on one meridian, ten kilometres apart."""


@pytest.fixture
def server(tmp_path: Path, broker: Mosquitto) -> Iterator[ServerProcess]:
    env = {"CHARGENET_MAP_TILE_URL": NO_TILES, "CHARGENET_LINE_OFFICIAL_ACCOUNT_ID": "@123abcde",
           **STEADY}  # fmt: skip
    running = ServerProcess(tmp_path, broker.url, 2.0, env=env)
    try:
        for station_id, lat in STATIONS.items():
            running.admin("POST", "/api/v1/stations", {
                "id": station_id, "name_ja": f"避難所 {station_id}", "name_en": station_id,
                "latitude": lat, "longitude": 132.5,
            })  # fmt: skip
        yield running
    finally:
        running.stop()


def listed(browser: webdriver.Chrome) -> list[str] | None:
    """The stations in the list's order, once sorted by walking time; None before."""
    try:
        items = browser.find_elements(By.CSS_SELECTOR, "#list li[data-station]")
        if len(items) != len(STATIONS) or not browser.find_elements(By.CSS_SELECTOR, "#list .walk"):
            return None
        return [str(i.get_attribute("data-station")) for i in items]
    except StaleElementReferenceException:
        return None


def test_stations_nearest_first_from_the_phones_location_without_tiles(
    browser: webdriver.Chrome, server: ServerProcess
) -> None:
    browser.execute_cdp_cmd(
        "Browser.grantPermissions", {"origin": server.url, "permissions": ["geolocation"]}
    )
    browser.execute_cdp_cmd(
        "Emulation.setGeolocationOverride",
        {"latitude": 33.39, "longitude": 132.5, "accuracy": 10},  # just south of st-south
    )
    width, height = PHONE  # a window is at least 500 px wide: the phone's viewport emulated
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 3, "mobile": True},
    )
    browser.get(server.url + "/public")
    order = wait_until(lambda: listed(browser), 20, "the list sorted by the phone's location")
    assert order == ["st-south", "st-middle", "st-north"]
    minutes = [
        int(str(m.get_attribute("data-minutes")))
        for m in browser.find_elements(By.CSS_SELECTOR, "#list .walk")
    ]
    assert minutes == sorted(minutes) and 10 < minutes[0] < 30  # 1.1 km x 1.3 at 4 km/h: 21
    wait_until(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#map path[data-station]")) == 3,
               15, "every station on the map though no tile loads")  # fmt: skip
    tiles = browser.find_element(By.ID, "map")
    wait_until(lambda: tiles.get_attribute("data-tiles") == "unavailable", 15, "the tiles failed")
    link = browser.find_element(By.ID, "line")
    assert link.get_attribute("href") == "https://line.me/R/ti/p/@123abcde"
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    ), "the page scrolls sideways at a phone's width"
    assert browser.execute_script("return window.innerWidth") == width


def test_free_places_and_the_next_window_are_the_live_ones_in_japan_time(
    browser: webdriver.Chrome, server: ServerProcess, broker: Mosquitto
) -> None:
    """The page's figures are the feed's live values, its window in Japan time, 24-hour,
    whatever zone the phone is set to."""
    server.admin("PUT", f"/api/v1/batteries/{GW}/line-1.1", {"station_id": "st-middle"})
    battery = Gateway(broker, "line-1.1", ports=4)
    battery.publish()

    def feed() -> dict[str, Any]:
        found: dict[str, Any] = next(
            f["properties"] for f in server.get("/opendata/v1/stations.geojson")["features"]
            if f["properties"]["id"] == "st-middle"
        )  # fmt: skip
        return found

    live = wait_until(lambda: (p := feed())["free_now"] == 4 and p, 20, "4 free in the feed")
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
    browser.get(server.url + "/public")
    window = datetime.fromisoformat(live["next_free_window"]).astimezone(ZoneInfo("Asia/Tokyo"))
    expected = f"今空き / free now: 4 / 4\n次の空き / next free: {window:%H:%M}"
    wait_until(lambda: expected in facts(browser, "st-middle"), 20, "st-middle's live figures")
    assert browser.execute_script("return new Date().getTimezoneOffset()") in (240, 300)

    battery.publish(1, 2)
    wait_until(lambda: feed()["free_now"] == 2, 20, "2 free in the feed after two faults")
    # The browser may keep the first document for its max-age (documented staleness): the
    # reader asking afresh is what this checks.
    browser.execute_cdp_cmd("Network.clearBrowserCache", {})
    browser.refresh()
    wait_until(lambda: "free now: 2 / 2" in facts(browser, "st-middle"), 20, "2 of 2 shown")


def facts(browser: webdriver.Chrome, station_id: str) -> str:
    try:
        found = browser.find_elements(
            By.CSS_SELECTOR, f'#list li[data-station="{station_id}"] .facts'
        )
        return str(found[0].text) if found else ""
    except StaleElementReferenceException:
        return ""
