"""`GET /metrics`: Prometheus text from a registry made per app (never the global one).

Values are read at scrape time from their owners (the MQTT link's counters, the SSE hub,
the database), so nothing has to remember to increment a metric and two apps in one
process (tests) never share numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from sqlalchemy import func, select

from server.db.models import Booking, Incident, PendingChanges
from server.db.session import Database
from server.ingest.fanout import FanOut


class Metrics:
    """The app's registry and the gauges it refreshes before each scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.ingest = Gauge(
            "chargenet_ingest_total", "MQTT ingest counters (messages, duplicates, malformed ...)",
            ["counter"], registry=self.registry,
        )  # fmt: skip
        self.bookings = Gauge(
            "chargenet_bookings", "Bookings by status", ["status"], registry=self.registry
        )
        self.incidents = Gauge(
            "chargenet_incidents", "Incidents by state", ["state"], registry=self.registry
        )
        self.sse = Gauge("chargenet_sse", "Server-sent-event hub", ["what"], registry=self.registry)
        self.changes = Gauge(
            "chargenet_changes", "Change sets: journalled, not yet seen by every listener "
            "(pending); listener failures (listener_errors)", ["what"], registry=self.registry,
        )  # fmt: skip

    async def refresh(self, db: Database, link: Any, hub: Any, fan_out: FanOut) -> None:
        async with db.transaction() as session:
            bookings = await session.execute(
                select(Booking.status, func.count()).group_by(Booking.status)
            )
            incidents = await session.execute(
                select(Incident.state, func.count()).group_by(Incident.state)
            )
            for status, count in bookings.all():
                self.bookings.labels(status).set(count)
            for state, count in incidents.all():
                self.incidents.labels(state).set(count)
            pending = await session.scalar(select(func.count()).select_from(PendingChanges))
            self.changes.labels("pending").set(pending or 0)
        self.changes.labels("listener_errors").set(fan_out.errors)
        for name, value in counters_of(link).items():
            self.ingest.labels(name).set(value)
        backlog = getattr(link, "backlog", None)  # received, not yet committed nor acknowledged
        if backlog is not None:
            self.ingest.labels("backlog").set(backlog)
        if hub is not None:
            self.sse.labels("subscribers").set(hub.subscribers)
            self.sse.labels("published").set(hub.published)
            self.sse.labels("dropped").set(hub.dropped)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def counters_of(source: Any) -> dict[str, float]:
    """Numeric counters from a mapping, a dataclass, or an object's `counters` attribute."""
    if source is None:
        return {}
    found = getattr(source, "counters", source)
    if callable(found):
        found = found()
    if dataclasses.is_dataclass(found) and not isinstance(found, type):
        found = dataclasses.asdict(found)
    if not isinstance(found, Mapping):
        found = {k: v for k, v in vars(found).items() if not k.startswith("_")}
    flat: dict[str, float] = {}
    for key, value in found.items():
        if isinstance(value, Mapping):  # e.g. messages routed per kind
            flat.update({f"{key}_{k}": float(v) for k, v in value.items()})
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[str(key)] = float(value)
    return flat


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    state = request.app.state
    svc = state.services
    await state.metrics.refresh(svc.db, getattr(state, "link", None), svc.hub, svc.fan_out)
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
