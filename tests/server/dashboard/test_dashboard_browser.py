"""The dashboard in headless Chromium, against a real server fed by simulator and gateway."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By

from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.server.running import TOKEN, ServerProcess
from tests.system.harness import Child, Simulator, quiet_simulator, start_gateway

pytestmark = pytest.mark.slow
JST = ZoneInfo("Asia/Tokyo")
GW = "gw-test"
REPORT_S = 2.0


@pytest.fixture
def running(tmp_path: Path, broker: Mosquitto) -> Iterator[tuple[ServerProcess, Simulator]]:
    sim = quiet_simulator(tmp_path)
    server = ServerProcess(tmp_path, broker.url, REPORT_S)
    gateway: Child | None = None
    try:
        server.admin("POST", "/api/v1/stations", {
            "id": "st-1", "name_ja": "大洲小学校", "name_en": "Ozu Elementary",
            "latitude": 33.5, "longitude": 132.5,
        })  # fmt: skip
        server.admin("PUT", f"/api/v1/batteries/{GW}/line-1.1", {"station_id": "st-1"})
        gateway = start_gateway(tmp_path, sim, broker.url, gw_id=GW, report_period_s=REPORT_S)
        yield server, sim
    finally:
        if gateway is not None:
            gateway.stop()
        server.stop()
        sim.stop()


def port_status(browser: webdriver.Chrome, port: str) -> str | None:
    """The port's status on the page; None while live updates are re-rendering it."""
    try:
        found = browser.find_elements(By.CSS_SELECTOR, f'#station-st-1 .port[data-port="{port}"]')
        return found[0].get_attribute("data-status") if found else None
    except StaleElementReferenceException:
        return None


def card_text(browser: webdriver.Chrome) -> str:
    try:
        return str(browser.find_element(By.ID, "station-st-1").text)
    except (StaleElementReferenceException, NoSuchElementException):
        return ""


def open_dashboard(browser: webdriver.Chrome, server: ServerProcess) -> None:
    """The page, once the battery has reached the server and the event stream is open."""
    wait_until(lambda: len(server.get("/api/v1/stations/st-1")["batteries"][0]["ports"]) == 4,
               30, "the battery's ports reach the server")  # fmt: skip
    browser.get(server.url + "/")
    wait_until(
        lambda: browser.find_element(By.ID, "live").get_attribute("data-state") == "open",
        15, "the event stream connected",
    )  # fmt: skip


def test_page_shows_the_station_and_updates_live(
    browser: webdriver.Chrome, running: tuple[ServerProcess, Simulator]
) -> None:
    server, sim = running
    open_dashboard(browser, server)
    wait_until(
        lambda: "大洲小学校" in (text := card_text(browser)) and "Ozu Elementary" in text,
        15, "the station card in Japanese and English",
    )  # fmt: skip
    wait_until(lambda: port_status(browser, "line-1.1/3") == "available", 15, "port 3 free")
    sim.inject("line-1", 1, "port_fault", port=3, error="over_current")
    wait_until(lambda: port_status(browser, "line-1.1/3") == "faulted", 20,
               "the page shows port 3 faulted without a reload")  # fmt: skip
    assert browser.execute_script("return performance.getEntriesByType('navigation').length") == 1


def incident_state(browser: webdriver.Chrome) -> str | None:
    """The state of the card's one incident ("" when there is none); None mid-render."""
    try:
        found = browser.find_elements(By.CSS_SELECTOR, "#station-st-1 .incidents li")
        return str(found[0].get_attribute("data-state")) if found else ""
    except StaleElementReferenceException:
        return None


def click(browser: webdriver.Chrome, selector: str) -> bool:
    """Click the element if it is there and not being re-rendered right now."""
    try:
        found = browser.find_elements(By.CSS_SELECTOR, selector)
        if not (found and found[0].is_enabled()):
            return False
        found[0].click()
    except StaleElementReferenceException:
        return False
    return True


def sign_in(browser: webdriver.Chrome, token: str) -> None:
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "sign-in").click()


def test_a_crew_member_acknowledges_and_resolves_an_incident(
    browser: webdriver.Chrome, running: tuple[ServerProcess, Simulator]
) -> None:
    server, sim = running
    open_dashboard(browser, server)
    sim.inject("line-1", 1, "port_fault", port=2, error="over_current")
    wait_until(lambda: incident_state(browser) == "open", 20, "the fault's incident on the card")
    assert browser.find_elements(By.CSS_SELECTOR, "#station-st-1 .incidents button") == []
    # named as a crew finds it on site, battery and port, not "port_fault port 2"
    assert "port_fault battery 1 (line-1.1) port 2 (open)" in card_text(browser)
    assert "battery 1 (line-1.1)" in browser.find_element(By.CSS_SELECTOR, ".battery-name").text

    sign_in(browser, "not-the-token")
    wait_until(lambda: "wrong token" in browser.find_element(By.ID, "crew-note").text, 10,
               "a wrong token is refused")  # fmt: skip
    sign_in(browser, TOKEN)
    wait_until(lambda: click(browser, '#station-st-1 button[data-action="acknowledge"]'), 10,
               "an acknowledge button once signed in")  # fmt: skip
    wait_until(lambda: incident_state(browser) == "acknowledged", 10, "the card says acknowledged")
    [acknowledged] = server.admin("GET", "/api/v1/incidents?state=acknowledged")["incidents"]
    assert acknowledged["kind"] == "port_fault" and acknowledged["acknowledged_by"]

    wait_until(lambda: click(browser, '#station-st-1 button[data-action="resolve"]'), 10,
               "a resolve button")  # fmt: skip
    wait_until(lambda: incident_state(browser) == "", 10, "the incident gone from the card")
    [resolved] = server.admin("GET", "/api/v1/incidents?state=resolved")["incidents"]
    assert resolved["id"] == acknowledged["id"]
    assert TOKEN not in browser.current_url
    browser.find_element(By.ID, "sign-out").click()
    assert browser.execute_script("return sessionStorage.length") == 0


def level_of(browser: webdriver.Chrome, station_id: str, level: str) -> tuple[str, str, str] | None:
    """The card's level, its badge text and its border colour; None until drawn at `level`."""
    try:
        card = browser.find_elements(By.ID, f"station-{station_id}")
        if not card:
            return None
        badge = card[0].find_element(By.CSS_SELECTOR, ".badge").text
        colour = card[0].value_of_css_property("border-left-color")
        drawn = str(card[0].get_attribute("data-level")), str(badge), str(colour)
    except (StaleElementReferenceException, NoSuchElementException):
        return None
    return drawn if drawn[0] == level else None


def test_a_station_without_chargers_has_its_own_grey_level_distinct_from_full(
    browser: webdriver.Chrome, running: tuple[ServerProcess, Simulator]
) -> None:
    server, _ = running
    for station_id, name in (("st-none", "電池なし避難所"), ("st-closed", "休止中避難所")):
        server.admin("POST", "/api/v1/stations", {
            "id": station_id, "name_ja": name, "name_en": name, "latitude": 33.5,
            "longitude": 132.5,
        })  # fmt: skip
    server.admin("PUT", f"/api/v1/batteries/{GW}/line-1.1", {"station_id": "st-closed"})
    wait_until(lambda: [len(b["ports"]) for b in server.get("/api/v1/stations/st-closed")
                        ["batteries"]] == [4], 30, "the battery's ports at st-closed")  # fmt: skip
    for port in range(1, 5):  # every port out of service: a station that is full or closed
        server.admin("POST", f"/api/v1/ports/{GW}/line-1.1/{port}/disable")
    levels = {
        s["id"]: s["availability"]["level"] for s in server.get("/api/v1/stations")["stations"]
    }
    assert (levels["st-none"], levels["st-closed"]) == ("no_chargers", "full")
    browser.get(server.url + "/")
    none = wait_until(lambda: level_of(browser, "st-none", "no_chargers"), 15, "the grey card")
    full = wait_until(lambda: level_of(browser, "st-closed", "full"), 15, "the full card")
    assert none is not None and full is not None
    assert none[:2] == ("no_chargers", "充電器なし / no chargers")
    assert full[1] == "満員・休止 / full or closed"
    assert none[2] != full[2]  # not the full station's red
    assert none[2] in ("rgb(107, 107, 107)", "rgba(107, 107, 107, 1)")  # --none


def test_a_finished_phone_does_not_say_full(
    browser: webdriver.Chrome, running: tuple[ServerProcess, Simulator]
) -> None:
    """ "full" is the station level's word; a port whose phone finished says done."""
    server, _ = running
    browser.get(server.url + "/")
    statuses = wait_until(lambda: browser.execute_script("return STATUS"), 15, "the page's words")
    assert statuses["finishing"] == "完了 done"
    assert not [word for word in statuses.values() if "full" in word]


def test_a_running_drills_twin_is_shown_marked_and_goes_when_the_drill_ends(
    browser: webdriver.Chrome, running: tuple[ServerProcess, Simulator]
) -> None:
    server, _ = running
    server.admin("POST", "/api/v1/stations", {
        "id": "st-2", "name_ja": "大洲体育館", "name_en": "Ozu Gym", "latitude": 33.51,
        "longitude": 132.51, "municipality": "大洲市",
    })  # fmt: skip
    open_dashboard(browser, server)
    drill = server.admin("POST", "/api/v1/drills", {
        "name": "訓練", "scenario": "quiet", "municipalities": ["大洲市"], "units": ["line-1.1"],
    })  # fmt: skip
    [twin] = drill["stations"]

    def twin_card() -> str:
        try:
            card = browser.find_element(By.ID, f"station-{twin}")
            text = f"{card.get_attribute('data-drill')}|{card.text}"
            return text if "DRILL" in text else ""
        except (StaleElementReferenceException, NoSuchElementException):
            return ""

    shown = wait_until(twin_card, 15, "the twin's card, marked")
    assert shown.startswith(f"{drill['id']}|") and "【訓練】大洲体育館" in shown
    assert f"訓練 / DRILL {drill['id']}" in shown
    for real in ("st-1", "st-2"):
        assert browser.find_element(By.ID, f"station-{real}").get_attribute("data-drill") is None
    server.admin("POST", f"/api/v1/drills/{drill['id']}/end")
    wait_until(lambda: not browser.find_elements(By.ID, f"station-{twin}"), 15,
               "the twin's card gone with the drill")  # fmt: skip


def test_the_cards_times_are_japan_time_with_the_browser_set_to_new_york(
    browser: webdriver.Chrome, running: tuple[ServerProcess, Simulator]
) -> None:
    """Operators read times in the stations' zone, 24-hour, whatever the browser's zone."""
    server, _ = running
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
    open_dashboard(browser, server)
    assert browser.execute_script("return new Date().getTimezoneOffset()") in (240, 300)
    window = server.get("/api/v1/stations/st-1")["availability"]["next_free_window"]
    expected = f"{datetime.fromisoformat(window).astimezone(JST):%H:%M}"
    card = "#station-st-1 .next-window"
    shown = wait_until(lambda: (b := browser.find_elements(By.CSS_SELECTOR, card)) and b[0].text,
                       15, "the card's next window")  # fmt: skip
    assert shown == expected
    updated = browser.find_element(By.ID, "updated").text.removeprefix("更新 / updated ")
    now = datetime.now(UTC).astimezone(JST)
    assert updated in {f"{now - timedelta(seconds=s):%H:%M:%S}" for s in range(60)}
