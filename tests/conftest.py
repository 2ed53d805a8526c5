"""Fixtures shared by every test package: a real Mosquitto broker, PostgreSQL, the
LINE / LINE WORKS sandbox, and headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from selenium import webdriver

from tests.browser import chromium
from tests.mosquitto import Mosquitto
from tests.postgres import create_database, server_url
from tests.sandboxes import Sandbox

# Hypothesis profiles, registered here so `--hypothesis-profile` finds them whatever paths
# pytest is given. `ci` (pyproject's addopts, so `./dev test`) keeps hypothesis' default
# count per test: the fuzz tests (tests/fuzz) take a few seconds there. `fuzz` is the full
# run, `python -m bench fuzz`: 7,000 cases per fuzz test, over 100,000 in all.
settings.register_profile("ci", deadline=None, print_blob=True)
settings.register_profile(
    "fuzz", max_examples=7_000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip

LOG_TAIL_LINES = 60
"""How much of each child process's log a failing test's report shows."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failing test's report carries the tails of the logs its processes wrote in tmp_path
    (server, gateway, simulator, Mosquitto), since CI keeps nothing else of a run."""
    report: pytest.TestReport = yield
    tmp = getattr(item, "funcargs", {}).get("tmp_path")
    if report.failed and isinstance(tmp, Path):
        for log in sorted(tmp.rglob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            report.sections.append((f"log {log.relative_to(tmp)}", "\n".join(lines)))
    return report


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh broker for one test; the test may stop and restart it on the same port."""
    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    mosquitto = Mosquitto(workdir)
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One PostgreSQL server for the run (a throwaway cluster unless one is configured)."""
    url, cluster = server_url()
    yield url
    if cluster is not None:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """An empty database of its own for one test (asyncpg URL)."""
    return create_database(postgres_server)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a test on both stores: SQLite in tmp_path and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'chargenet.sqlite3'}"
    server: str = request.getfixturevalue("postgres_server")
    return create_database(server)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A `chargenet sandbox` process of its own for one test, pointed nowhere until the test
    calls `point_at(server_url)`."""
    started = Sandbox(tmp_path / "sandbox")
    yield started
    started.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium the size of a phone, its profile in tmp_path."""
    driver = chromium(tmp_path / "chrome")
    yield driver
    driver.quit()
