"""The dashboard's priority panel in headless Chromium, against a real server: a signed-in
operator sees a resident's request by its reference (no LINE user id), grants it, and sets
the municipality's hold-back; signed out, no panel."""

from __future__ import annotations

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.conditions import wait_until
from tests.server.dashboard.test_report_browser import server  # noqa: F401  (the fixture)
from tests.server.running import TOKEN, ServerProcess

pytestmark = pytest.mark.slow

REFERENCE = "K7Q2M9XA"


def test_an_operator_grants_a_request_and_sets_the_hold_back(
    browser: webdriver.Chrome,
    server: ServerProcess,  # noqa: F811
) -> None:
    server.register("Usecretuser", "大洲市", "medical_device", REFERENCE)
    browser.get(server.url + "/")
    assert not browser.find_element(By.ID, "priority").is_displayed()
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "sign-in").click()
    row = f'#priority-requests tr[data-reference="{REFERENCE}"]'
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, row), 15, "the request listed")
    assert "Usecretuser" not in browser.find_element(By.ID, "priority").text
    counts = browser.find_element(By.ID, "priority-counts").text
    assert "requested 1" in counts and "granted 0" in counts
    browser.find_element(By.CSS_SELECTOR, f'{row} button[data-action="grant"]').click()
    shown = f'{row}[data-granted="true"]'
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, shown), 15, "the grant shown")
    [granted] = server.admin("GET", "/api/v1/priority/requests")["requests"]
    assert granted["granted"] and granted["source"] == "desk"
    rule = '#priority-rules tr[data-municipality="大洲市"]'
    share = browser.find_element(By.CSS_SELECTOR, f'{rule} input[data-field="hold_share"]')
    share.clear()
    share.send_keys("0.25")
    lead = browser.find_element(By.CSS_SELECTOR, f'{rule} input[data-field="release_before_min"]')
    lead.clear()
    lead.send_keys("45")
    browser.find_element(By.CSS_SELECTOR, f'{rule} button[data-action="save-rule"]').click()

    def saved() -> bool:
        [found] = server.admin("GET", "/api/v1/priority/rules")["rules"]
        return (found["hold_share"], found["release_before_min"]) == (0.25, 45)

    wait_until(saved, 15, "the rule saved")
