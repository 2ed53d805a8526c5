"""The dashboard's map in headless Chromium, its tiles unreachable as at a shelter without a
network: every station in its card's colour, turned live when its ports fault."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.server.running import ServerProcess
from tests.system.harness import Child, Simulator, quiet_simulator, start_gateway

pytestmark = pytest.mark.slow
GW = "gw-map"
REPORT_S = 2.0
NO_TILES = "http://127.0.0.1:9/{z}/{x}/{y}.png"
"""Nothing listens on the discard port: every tile fails, as without a network."""
OUTLINES = Path(__file__).with_name("outlines.geojson")
"""Two municipalities' outlines, in 国土数値情報 行政区域's property names."""
COLOURS = {"free": "#1b7f3b", "full": "#b00020", "no_chargers": "#6b6b6b"}
"""style.css's --free, --full and --none."""


@pytest.fixture
def running(tmp_path: Path, broker: Mosquitto) -> Iterator[tuple[ServerProcess, Simulator]]:
    sim = quiet_simulator(tmp_path)
    server = ServerProcess(tmp_path, broker.url, REPORT_S, env={
        "CHARGENET_MAP_TILE_URL": NO_TILES, "CHARGENET_MAP_OUTLINES_FILE": str(OUTLINES),
    })  # fmt: skip
    gateway: Child | None = None
    try:
        stations = (
            ("st-1", "大洲小学校", 33.50, "大洲市"),
            ("st-2", "八幡浜体育館", 33.46, "八幡浜市"),
        )
        for station_id, name, lat, muni in stations:
            server.admin("POST", "/api/v1/stations", {
                "id": station_id, "name_ja": name, "name_en": name, "latitude": lat,
                "longitude": 132.5, "municipality": muni,
            })  # fmt: skip
        server.admin("PUT", f"/api/v1/batteries/{GW}/line-1.1", {"station_id": "st-1"})
        gateway = start_gateway(tmp_path, sim, broker.url, gw_id=GW, report_period_s=REPORT_S)
        yield server, sim
    finally:
        if gateway is not None:
            gateway.stop()
        server.stop()
        sim.stop()


def marker(browser: webdriver.Chrome, station_id: str) -> tuple[str, str, str] | None:
    """The station's marker on the map: its level, fill colour and open incidents."""
    try:
        found = browser.find_elements(By.CSS_SELECTOR, f'#map path[data-station="{station_id}"]')
        if not found:
            return None
        return tuple(
            str(found[0].get_attribute(a)) for a in ("data-level", "fill", "data-incidents")
        )  # type: ignore[return-value]
    except StaleElementReferenceException:
        return None


def test_the_map_colours_every_station_and_turns_a_faulted_one_live_without_tiles(
    browser: webdriver.Chrome, running: tuple[ServerProcess, Simulator]
) -> None:
    server, sim = running
    wait_until(lambda: len(server.get("/api/v1/stations/st-1")["batteries"][0]["ports"]) == 4,
               30, "the battery's ports reach the server")  # fmt: skip
    browser.get(server.url + "/")
    wait_until(lambda: browser.find_element(By.ID, "live").get_attribute("data-state") == "open",
               15, "the event stream connected")  # fmt: skip
    wait_until(lambda: marker(browser, "st-1") == ("free", COLOURS["free"], "0"), 15,
               "st-1 green on the map")  # fmt: skip
    assert marker(browser, "st-2") == ("no_chargers", COLOURS["no_chargers"], "0")
    tiles = browser.find_element(By.ID, "map")
    wait_until(lambda: tiles.get_attribute("data-tiles") == "unavailable", 15,
               "the tiles failed, the markers drawn all the same")  # fmt: skip
    wait_until(lambda: tiles.get_attribute("data-outlines") == "2", 15, "the two outlines drawn")
    drawn = browser.find_elements(
        By.CSS_SELECTOR, "#map .leaflet-overlay-pane path:not([data-station])"
    )
    assert len(drawn) == 2  # beneath the markers, on the plain background

    for port in range(1, 5):
        sim.inject("line-1", 1, "port_fault", port=port, error="over_current")

    def red_and_ringed() -> bool:
        drawn = marker(browser, "st-1")
        return drawn is not None and drawn[:2] == ("full", COLOURS["full"]) and drawn[2] != "0"

    wait_until(red_and_ringed, 30, "st-1 red and ringed for its incidents, without a reload")
    assert browser.execute_script("return performance.getEntriesByType('navigation').length") == 1

    browser.find_element(By.CSS_SELECTOR, '#map path[data-station="st-1"]').click()
    popup = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ".leaflet-popup .station"),
                       10, "a click shows the station's card")  # fmt: skip
    text = str(popup[0].get_attribute("textContent"))  # part of it scrolled, in a short popup
    assert "大洲小学校" in text and "full or closed" in text and "port_fault" in text


def test_the_filters_narrow_cards_and_markers_to_one_municipality(
    browser: webdriver.Chrome, running: tuple[ServerProcess, Simulator]
) -> None:
    server, _ = running
    browser.get(server.url + "/")
    wait_until(lambda: marker(browser, "st-2") is not None, 15, "both stations drawn")
    ozu = '#filter-municipality option[value="大洲市"]'
    choice = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ozu), 15,
                        "the municipality filter offers 大洲市")  # fmt: skip
    choice[0].click()
    wait_until(lambda: marker(browser, "st-2") is None and not browser.find_elements(By.ID,
               "station-st-2"), 10, "st-2's card and marker gone")  # fmt: skip
    assert marker(browser, "st-1") is not None and browser.find_elements(By.ID, "station-st-1")
