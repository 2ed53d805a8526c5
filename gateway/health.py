"""The gateway's health endpoint: `GET /healthz` (JSON) and `GET /metrics` (Prometheus).

A gateway sits in a shelter's back room, so what the prefecture's monitoring needs of it
is here: whether it reaches the broker, how full its outbox is, and per serial bus and
unit what polling achieves. `/healthz` answers 200 `ok`, or 503 `degraded` naming each
problem (the broker not connected, a bus on which no unit answered for three report
periods, the outbox past its budget or its disk refusing writes). The figures are read
from their owners at each request (`GatewayView`), so nothing has to remember to count;
the checks are plain rules.
Served with aiohttp inside the gateway's own event loop, on `health_listen` only.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.poller import UnitStats
from gateway.publisher import Counters

SILENT_PERIODS: Final = 3
"""Report periods without any answer on a bus before it is a problem (the server's offline)."""


@dataclass(frozen=True, slots=True)
class BusView:
    name: str
    units: Mapping[int, UnitStats]
    busy_s: float
    last_ok_age_s: float | None
    """Since a unit last answered; None before the first answer."""


@dataclass(frozen=True, slots=True)
class GatewayView:
    gw_id: str
    version: str
    mqtt_connected: bool
    mqtt: Counters
    outbox_messages: int
    outbox_unconfirmed: int
    outbox_bytes: int
    outbox_budget_bytes: int
    over_budget_appends: int
    buses: Sequence[BusView]
    report_period_s: float
    outbox_write_error: str | None = None
    """Why the outbox's disk refuses writes (full ...); None while it takes them."""
    outbox_held: int = 0
    """Entries held in memory meanwhile."""
    outbox_write_failures: int = 0


def problems(view: GatewayView) -> list[str]:
    """What keeps the gateway from doing its job, one line each; empty when healthy."""
    found = [] if view.mqtt_connected else ["mqtt: not connected to the broker"]
    silent_after_s = SILENT_PERIODS * view.report_period_s
    for bus in view.buses:
        if bus.last_ok_age_s is None or bus.last_ok_age_s > silent_after_s:
            found.append(f"bus {bus.name}: no unit answered for {silent_after_s:.0f} s")
    if view.outbox_bytes > view.outbox_budget_bytes:
        found.append(f"outbox: {view.outbox_bytes} bytes, past its {view.outbox_budget_bytes}")
    if view.outbox_write_error is not None:
        found.append(f"outbox: cannot write ({view.outbox_write_error}), "
                     f"{view.outbox_held} messages held in memory")  # fmt: skip
    return found


def report(view: GatewayView) -> tuple[int, dict[str, object]]:
    """The `/healthz` status code and body."""
    found = problems(view)
    body: dict[str, object] = {
        "status": "degraded" if found else "ok",
        "problems": found,
        "gw_id": view.gw_id,
        "version": view.version,
        "mqtt_connected": view.mqtt_connected,
        "outbox": {"messages": view.outbox_messages, "unconfirmed": view.outbox_unconfirmed,
                   "bytes": view.outbox_bytes, "budget_bytes": view.outbox_budget_bytes,
                   "write_error": view.outbox_write_error, "held": view.outbox_held,
                   "write_failures": view.outbox_write_failures},
        "buses": {b.name: {"units": len(b.units), "last_ok_age_s": b.last_ok_age_s}
                  for b in view.buses},
    }  # fmt: skip
    return (503 if found else 200), body


def families(view: GatewayView) -> Iterator[Metric]:
    """The exposition: every name fixed, every varying part a label."""
    info = GaugeMetricFamily("chargenet_gateway_info", "This gateway", labels=["gw_id", "version"])
    info.add_metric([view.gw_id, view.version], 1)
    yield info
    yield GaugeMetricFamily(
        "chargenet_gateway_mqtt_connected", "Connected to the broker", value=view.mqtt_connected
    )
    mqtt = CounterMetricFamily(
        "chargenet_gateway_mqtt", "Publisher counters (published, acked ...)", labels=["counter"]
    )
    for field in dataclasses.fields(view.mqtt):
        mqtt.add_metric([field.name], getattr(view.mqtt, field.name))
    yield mqtt
    outbox = GaugeMetricFamily(
        "chargenet_gateway_outbox",
        "The outbox: messages not yet delivered, delivered but not yet confirmed by the "
        "server, bytes on disk, its budget",
        labels=["what"],
    )
    outbox.add_metric(["messages"], view.outbox_messages)
    outbox.add_metric(["unconfirmed"], view.outbox_unconfirmed)
    outbox.add_metric(["bytes"], view.outbox_bytes)
    outbox.add_metric(["budget_bytes"], view.outbox_budget_bytes)
    outbox.add_metric(["held"], view.outbox_held)
    yield outbox
    yield CounterMetricFamily(
        "chargenet_gateway_outbox_write_failures",
        "Appends the disk refused (full, failing): held in memory, see outbox{what=held}",
        value=view.outbox_write_failures,
    )
    yield CounterMetricFamily(
        "chargenet_gateway_outbox_over_budget_appends",
        "Messages stored although the outbox was full of what it never drops",
        value=view.over_budget_appends,
    )
    polls = CounterMetricFamily(
        "chargenet_gateway_polls", "Polls per unit by outcome", labels=["bus", "unit", "outcome"]
    )
    busy = CounterMetricFamily(
        "chargenet_gateway_bus_busy_seconds",
        "Time the bus spent on requests: its rate is the line's utilisation",
        labels=["bus"],
    )
    silent = GaugeMetricFamily(
        "chargenet_gateway_bus_silent_seconds", "Since a unit on the bus answered", labels=["bus"]
    )
    for bus in view.buses:
        for unit_id, stats in sorted(bus.units.items()):
            polls.add_metric([bus.name, str(unit_id), "ok"], stats.polls_ok)
            polls.add_metric([bus.name, str(unit_id), "failed"], stats.polls_failed)
        busy.add_metric([bus.name], bus.busy_s)
        if bus.last_ok_age_s is not None:
            silent.add_metric([bus.name], bus.last_ok_age_s)
    yield from (polls, busy, silent)


class _Collector(Collector):
    def __init__(self, view: Callable[[], GatewayView]) -> None:
        self._view = view

    def collect(self) -> Iterator[Metric]:
        return families(self._view())


class HealthServer:
    """`start` on the gateway's loop, `stop` before it closes what `view` reads."""

    def __init__(self, view: Callable[[], GatewayView]) -> None:
        self._view = view
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Collector(view))
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)

    async def start(self, host: str, port: int) -> int:
        """Listen; the port bound (the one asked for, or the system's choice for 0)."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        return int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _healthz(self, _request: web.Request) -> web.Response:
        status, body = report(self._view())
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
