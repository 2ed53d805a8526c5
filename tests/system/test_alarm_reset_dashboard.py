"""The crew resets a battery's latched fault from the dashboard (headless Chromium, real
server, simulator and gateway)."""

from __future__ import annotations

import sqlite3

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.conditions import wait_until
from tests.server.dashboard.test_dashboard_browser import (
    click,
    open_dashboard,
    port_status,
    running,  # noqa: F401  (a fixture)
    sign_in,
)
from tests.server.running import TOKEN, ServerProcess
from tests.system.harness import Simulator

pytestmark = pytest.mark.slow
RESET = '#station-st-1 button[data-action="reset-alarms"][data-unit="line-1.1"]'


def resets_sent(server: ServerProcess) -> int:
    database = server.database_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT count(*) FROM commands WHERE action = 'reset_alarms'").fetchone()
        return int(row[0])


def test_the_reset_button_brings_a_fixed_port_back(
    browser: webdriver.Chrome,
    running: tuple[ServerProcess, Simulator],  # noqa: F811
) -> None:
    server, sim = running
    open_dashboard(browser, server)
    sign_in(browser, TOKEN)
    wait_until(lambda: browser.find_element(By.ID, "sign-out").is_displayed(), 10, "crew mode")
    assert browser.find_elements(By.CSS_SELECTOR, RESET) == []  # nothing to reset

    sim.inject("line-1", 1, "port_fault", port=2, error="over_current")
    wait_until(lambda: port_status(browser, "line-1.1/2") == "faulted", 20, "port 2 faulted")
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, '[data-action="resolve-reset"]'),
               20, "the incident's resolve + reset alarms button")  # fmt: skip
    sim.clear("line-1", 1, "port_fault", port=2)
    wait_until(lambda: click(browser, RESET), 10, "the battery's reset button")
    wait_until(lambda: port_status(browser, "line-1.1/2") == "available", 20,
               "port 2 available again on the page")  # fmt: skip
    assert resets_sent(server) == 1
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, RESET) == [], 10,
               "no reset button once nothing is latched")  # fmt: skip
