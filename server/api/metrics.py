"""`GET /metrics`: Prometheus text from a registry made per app (never the global one).

Values are read at scrape time from their owners (the MQTT link's counters, the SSE hub,
the fan-out, the database) and handed to prometheus_client as metric families, so nothing
has to remember to increment a metric, a label with nothing left to count disappears, and
two apps in one process (tests) never share numbers. A database outage is when an
operator most needs the rest, so the database is read with a deadline and its state is a
metric of its own (`chargenet_database_up`): while it is down, the scrape still answers,
without the figures only the database holds.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from server.booking.batches import Batches
from server.dashboard.sse import EventHub
from server.db.models import (
    Booking,
    Drill,
    Gateway,
    Incident,
    OutboxMessage,
    PendingChanges,
    SeqGap,
    Station,
    Unit,
)
from server.db.session import Database, is_outage
from server.delivery.sender import PENDING, OutboxSender
from server.ingest.fanout import FanOut
from server.ingest.link import MqttLink
from server.ingest.router import IngestCounters

DATABASE_READ_S: Final = 2.0
"""How long a scrape waits for the database before reporting it down."""


@dataclass(frozen=True, slots=True)
class DatabaseFigures:
    bookings: dict[str, int]
    incidents: dict[str, int]
    pending_changes: int
    unmapped_units: int
    """Batteries heard of that no station has (kept out of the live picture until mapped)."""
    outbox_unsent: dict[str, int] = dataclasses.field(default_factory=dict)
    """Messages not yet sent, by platform (the partial index of unsent rows answers it)."""
    outbox_oldest_s: dict[str, float] = dataclasses.field(default_factory=dict)
    """Age of the oldest message not yet sent, by platform: a stuck platform shows here."""
    incidents_open: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    """Unresolved incidents by (kind, severity)."""
    gateways: dict[str, int] = dataclasses.field(default_factory=dict)
    """Gateways by state (online, offline ...)."""
    seq_gaps: dict[str, int] = dataclasses.field(default_factory=dict)
    """Messages each gateway skipped that have not come since."""
    clock_skew_s: dict[str, float] = dataclasses.field(default_factory=dict)
    """Each gateway's clock ahead (+) or behind (-) the server's."""


@dataclass(frozen=True, slots=True)
class Scrape:
    """What one scrape read from every owner; `database` is None while it is unavailable."""

    database: DatabaseFigures | None
    ingest: IngestCounters | None = None
    backlog: int | None = None
    listener_errors: int = 0
    sse: Mapping[str, int] = dataclasses.field(default_factory=dict)
    outbox: Mapping[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    """Attempts recorded by this process's sender, by (platform, outcome)."""
    assignment: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """The live policy's batches by outcome, and its draws left out ("resolving" only)."""


async def read_database(
    db: Database, now: datetime, timeout_s: float = DATABASE_READ_S
) -> DatabaseFigures | None:
    """The figures only the database holds; None when it is down or does not answer in time."""
    try:
        async with asyncio.timeout(timeout_s), db.transaction() as session:
            bookings = await session.execute(
                select(Booking.status, func.count())
                .join(Station, Station.id == Booking.station_id)
                .where(Station.drill_id.is_(None))  # a drill's twins are played, not served
                .group_by(Booking.status)
            )
            incidents = await session.execute(
                select(Incident.state, func.count())
                .where(Incident.drill_id.is_(None))  # a drill's are no one's to page
                .group_by(Incident.state)
            )
            pending = await session.scalar(select(func.count()).select_from(PendingChanges))
            unmapped = await session.scalar(
                select(func.count()).select_from(Unit).where(Unit.station_id.is_(None))
            )
            unsent = (
                await session.execute(
                    select(OutboxMessage.platform, func.count(), func.min(OutboxMessage.created_at))
                    .where(OutboxMessage.state == PENDING)
                    .group_by(OutboxMessage.platform)
                )
            ).all()
            open_ = await session.execute(
                select(Incident.kind, Incident.severity, func.count())
                .where(Incident.state != "resolved", Incident.drill_id.is_(None))
                .group_by(Incident.kind, Incident.severity)
            )
            gateways = await session.execute(  # a drill's gateway is offline once it ended
                select(Gateway.state, func.count())
                .where(Gateway.gw_id.not_in(select(Drill.gw_id)))
                .group_by(Gateway.state)
            )
            gaps = await session.execute(
                select(
                    SeqGap.gw_id, func.sum(SeqGap.last_missing - SeqGap.first_missing + 1)
                ).group_by(SeqGap.gw_id)
            )
            skews = await session.execute(
                select(Gateway.gw_id, Gateway.clock_skew_s).where(Gateway.clock_skew_s.is_not(None))
            )
            return DatabaseFigures(
                bookings={str(s): int(n) for s, n in bookings.all()},
                incidents={str(s): int(n) for s, n in incidents.all()},
                pending_changes=int(pending or 0),
                unmapped_units=int(unmapped or 0),
                outbox_unsent={str(p): int(n) for p, n, _ in unsent},
                outbox_oldest_s={str(p): max(0.0, (now - oldest).total_seconds())
                                 for p, _, oldest in unsent},
                incidents_open={(str(k), str(s)): int(n) for k, s, n in open_.all()},
                gateways={str(s): int(n) for s, n in gateways.all()},
                seq_gaps={str(g): int(n) for g, n in gaps.all()},
                clock_skew_s={str(g): float(s or 0.0) for g, s in skews.all()},
            )  # fmt: skip
    except TimeoutError:
        return None
    except Exception as exc:
        if is_outage(exc):
            return None
        raise


def families(scrape: Scrape) -> Iterator[Metric]:
    """The exposition of one scrape: every name fixed, every varying part a label."""
    up = GaugeMetricFamily("chargenet_database_up", "Whether the database answered this scrape")
    up.add_metric([], 1.0 if scrape.database is not None else 0.0)
    yield up
    changes = GaugeMetricFamily(
        "chargenet_changes", "Change sets: journalled, not yet seen by every listener "
        "(pending); listener failures (listener_errors)", labels=["what"],
    )  # fmt: skip
    changes.add_metric(["listener_errors"], scrape.listener_errors)
    if scrape.database is not None:
        yield _by_label("chargenet_bookings", "Bookings by status", "status",
                        scrape.database.bookings)  # fmt: skip
        yield _by_label("chargenet_incidents", "Incidents by state", "state",
                        scrape.database.incidents)  # fmt: skip
        changes.add_metric(["pending"], scrape.database.pending_changes)
        yield GaugeMetricFamily(
            "chargenet_units_unmapped", "Batteries heard of that no station has: out of the "
            "live picture until an operator maps them", value=scrape.database.unmapped_units,
        )  # fmt: skip
        yield _by_label("chargenet_outbox_unsent", "Messages to LINE / LINE WORKS not yet "
                        "sent", "platform", scrape.database.outbox_unsent)  # fmt: skip
        yield _by_label("chargenet_outbox_oldest_age_seconds", "Age of the oldest message to "
                        "LINE / LINE WORKS not yet sent", "platform",
                        scrape.database.outbox_oldest_s)  # fmt: skip
        incidents = GaugeMetricFamily("chargenet_incidents_open", "Unresolved incidents by "
                                      "kind and severity", labels=["kind", "severity"])  # fmt: skip
        for (kind, severity), count in sorted(scrape.database.incidents_open.items()):
            incidents.add_metric([kind, severity], count)
        yield incidents
        yield _by_label("chargenet_gateways", "Gateways by state", "state",
                        scrape.database.gateways)  # fmt: skip
        yield _by_label("chargenet_seq_gap_messages", "Messages a gateway skipped that have "
                        "not come since (lost on its side or still to be replayed)", "gw_id",
                        scrape.database.seq_gaps)  # fmt: skip
        yield _by_label("chargenet_gateway_clock_skew_seconds", "How far each gateway's clock "
                        "runs ahead (+) or behind (-) the server's, by its newest message",
                        "gw_id", scrape.database.clock_skew_s)  # fmt: skip
    yield changes
    if scrape.outbox:
        attempts = CounterMetricFamily(
            "chargenet_outbox_attempts", "Sends to LINE / LINE WORKS by outcome (sent, "
            "retry, failed, reply_unusable), this process", labels=["platform", "outcome"],
        )  # fmt: skip
        for (platform, outcome), count in sorted(scrape.outbox.items()):
            attempts.add_metric([platform, outcome], count)
        yield attempts
    if scrape.assignment:
        batches = CounterMetricFamily(
            "chargenet_assignment", "Live ranking, this process: batches resolved, greedy "
            "(no forecast), late (no draw fitted the deadline: greedy), draws skipped, "
            "draws cut (still running at the deadline: stopped), solver_lost (its solver "
            "process died: greedy)",
            labels=["what"],
        )  # fmt: skip
        for what, count in sorted(scrape.assignment.items()):
            batches.add_metric([what], count)
        yield batches
    if scrape.ingest is not None:
        yield from _ingest(scrape.ingest)
    if scrape.backlog is not None:
        yield GaugeMetricFamily(
            "chargenet_ingest_backlog", "MQTT messages received, not yet committed nor "
            "acknowledged", value=scrape.backlog,
        )  # fmt: skip
    if scrape.sse:
        yield _by_label("chargenet_sse", "Server-sent-event hub", "what", scrape.sse)


def _ingest(counters: IngestCounters) -> Iterator[Metric]:
    totals = CounterMetricFamily(
        "chargenet_ingest", "MQTT ingest counters (received, applied, duplicates, "
        "malformed ...)", labels=["counter"],
    )  # fmt: skip
    routed = CounterMetricFamily(
        "chargenet_ingest_routed", "Valid MQTT messages by kind", labels=["kind"]
    )
    for field in dataclasses.fields(counters):
        value = getattr(counters, field.name)
        if isinstance(value, Mapping):
            for kind, count in sorted(value.items()):
                routed.add_metric([str(kind)], count)
        else:
            totals.add_metric([field.name], value)
    yield totals
    yield routed


def _by_label(
    name: str, documentation: str, label: str, values: Mapping[str, int] | Mapping[str, float]
) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


class Metrics(Collector):
    """The app's registry; `refresh` reads every owner, the registry renders what it read."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._scrape = Scrape(database=None)
        self.registry.register(self)

    async def refresh(
        self,
        db: Database,
        link: MqttLink | None,
        hub: EventHub | None,
        fan_out: FanOut,
        outbox: OutboxSender,
        now: datetime,
        batches: Batches | None = None,
    ) -> None:
        sse = {"subscribers": hub.subscribers, "published": hub.published,
               "dropped": hub.dropped} if hub is not None else {}  # fmt: skip
        self._scrape = Scrape(
            database=await read_database(db, now),
            ingest=link.counters if link is not None else None,
            backlog=link.backlog if link is not None else None,
            listener_errors=fan_out.errors,
            sse=sse,
            outbox={(str(p), str(o)): n for (p, o), n in outbox.counts.items()},
            assignment={} if batches is None else {
                "resolved": batches.solved, "greedy": batches.greedy - batches.late,
                "late": batches.late, "draws_skipped": batches.skipped,
                "draws_cut": batches.solvers.cut, "solver_lost": batches.lost,
            },
        )  # fmt: skip

    def collect(self) -> Iterator[Metric]:
        return families(self._scrape)

    def render(self) -> bytes:
        return generate_latest(self.registry)


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    state = request.app.state
    svc = state.services
    link = getattr(state, "link", None)
    await state.metrics.refresh(
        svc.db, link, svc.hub, svc.fan_out, svc.outbox, svc.clock(), svc.booking.batches
    )
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
