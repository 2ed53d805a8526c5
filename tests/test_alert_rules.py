"""deploy/prometheus: the alert rules and the scrape config pass promtool, each alert fires
on the series it is for (alerts.test.yml), and every metric a rule reads is one that the
server, the intake or a gateway exports (a renamed metric would leave an alert silent)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from gateway import health
from server.api import metrics
from server.ingest.router import IngestCounters
from server.intake.app import IntakeApp
from server.settings import Settings
from tests.gateway.test_health import HEALTHY

RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
METRIC = re.compile(r"\b(chargenet_[a-z_]+)")


def promtool(*args: str) -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: apt-get install prometheus (.ci/run does)"
    done = subprocess.run([found, *args], cwd=RULES, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("args", [("check", "rules", "alerts.yml"),
                                  ("check", "config", "prometheus.yml"),
                                  ("test", "rules", "alerts.test.yml")])  # fmt: skip
def test_promtool_accepts_the_rules_and_their_tests(args: tuple[str, ...]) -> None:
    assert "SUCCESS" in promtool(*args)


def sample_names(collect: Collector) -> set[str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collect)
    text = generate_latest(registry).decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


class Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def exported(tmp_path: Path) -> set[str]:
    """Every sample name of a full scrape of each part (every optional figure present)."""
    figures = metrics.DatabaseFigures(
        bookings={"active": 1}, incidents={"open": 1}, pending_changes=0, unmapped_units=0,
        outbox_unsent={"line": 1}, outbox_oldest_s={"line": 1.0},
        incidents_open={("port_fault", "warning"): 1}, gateways={"offline": 1},
        seq_gaps={"gw-1": 1}, clock_skew_s={"gw-1": 0.1},
    )  # fmt: skip
    scrape = metrics.Scrape(database=figures, ingest=IngestCounters(), backlog=0,
                            sse={"subscribers": 0}, outbox={("line", "failed"): 1})  # fmt: skip
    names = sample_names(Families(list(metrics.families(scrape))))
    names |= sample_names(Families(list(health.families(HEALTHY))))
    intake = IntakeApp(Settings(intake_journal=tmp_path / "journal.sqlite3"))

    async def scrape_intake() -> str:
        transport = httpx.ASGITransport(app=intake)
        async with httpx.AsyncClient(transport=transport, base_url="http://i") as client:
            return (await client.get("/metrics")).text

    text = asyncio.run(scrape_intake())
    names |= {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    return names


def test_every_metric_a_rule_reads_is_exported(tmp_path: Path) -> None:
    read = set(METRIC.findall((RULES / "alerts.yml").read_text()))
    assert len(read) >= 15
    assert read <= exported(tmp_path), read - exported(tmp_path)
