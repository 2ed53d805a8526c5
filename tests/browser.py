"""Headless Chromium for the browser tests (the dashboard, both sandboxes' pages)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

PHONE: Final = (390, 844)
"""A resident's or a crew member's phone, as most of them open these pages."""


def chromium(profile: Path, window: tuple[int, int] = PHONE) -> webdriver.Chrome:
    """Debian's Chromium and chromedriver, quiet (no updates, sync or first-run pages), its
    profile in `profile`; `quit()` it when done."""
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                f"--window-size={window[0]},{window[1]}"):  # fmt: skip
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
