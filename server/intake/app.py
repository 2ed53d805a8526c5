"""`chargenet intake`'s ASGI app: LINE's webhook verified, journaled, answered, handed on.

Why a process of its own: the server answers LINE's webhook on the event loop that also
runs the conversations, the bookings, the ingest and the sends, and under a burst of
residents an acknowledgement waits behind that work. Here the loop does nothing else: it
verifies the signature (as the server does, `events.verified_events`), writes the events
to the journal and answers 200, and `Relay` hands them on to the server, which stores and
processes them as if LINE had sent them itself. Point LINE's webhook URL here, or at the
server directly: both speak the same webhook.

    POST /line/webhook   200 once journaled; 401 forged, 413 too large, 422 not a webhook,
                         503 the journal failed (LINE sends it again)
    GET  /healthz        200 {"pending", "handedOn", "failures", "failingForS"}
    GET  /metrics        the same as Prometheus gauges and counters
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any, Final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import Receive, Scope, Send

from server.api.errors import TOO_LARGE, error_body, read_body, send_json
from server.api.jobs import cancel_all
from server.delivery.http import PlatformHttp
from server.errors import ServerError
from server.intake.journal import Journal
from server.intake.pending import Pending
from server.intake.relay import Relay
from server.line.events import verified_events
from server.line.inbox import Received
from server.line.webhook import MAX_BODY, WEBHOOK_PATH
from server.settings import Settings

log = logging.getLogger(__name__)

RETRY_AFTER_S: Final = 5
JOURNAL_FAILED: Final = error_body(
    "journal_unavailable", f"the intake could not store the events; try again in {RETRY_AFTER_S} s"
)
NOT_FOUND: Final = error_body("not_found", "the intake serves POST /line/webhook only")


class IntakeApp:
    """The ASGI app; its lifespan opens the journal and starts the relay."""

    def __init__(self, settings: Settings) -> None:
        self._secret = settings.line_channel_secret.get_secret_value()
        self.pending = Pending(Journal(settings.intake_journal))
        self._http = PlatformHttp(
            settings.delivery_timeout_s, base_url=settings.intake_server_url, connections=1
        )
        self.relay = Relay(self.pending, self._http, self._secret)
        self.received = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        route = (scope["method"], scope["path"])
        if route == ("POST", WEBHOOK_PATH):
            await self._webhook(scope, receive, send)
        elif route == ("GET", "/healthz"):
            await send_json(send, 200, self.health())
        elif route == ("GET", "/metrics"):
            await self._metrics(send)
        else:
            await send_json(send, 404, NOT_FOUND)

    def health(self) -> dict[str, Any]:
        since = self.relay.failing_since
        return {
            "pending": len(self.pending), "handedOn": self.relay.handed_on,
            "failures": self.relay.failures,
            "failingForS": round(time.time() - since, 1) if since else 0.0,
        }  # fmt: skip

    async def _webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = await read_body(receive, MAX_BODY)
        if raw is None:
            await send_json(send, 413, TOO_LARGE)
            return
        signature = dict(scope["headers"]).get(b"x-line-signature", b"").decode("latin-1")
        try:
            events = verified_events(self._secret, raw, signature)
            now = datetime.now(UTC)
            await self.pending.store([Received(event, now) for event in events])
        except ServerError as exc:
            await send_json(send, exc.status, error_body(exc.code, exc.message))
            return
        except (sqlite3.Error, OSError) as exc:
            log.warning("webhook refused, the journal failed: %s", type(exc).__name__)
            retry = [(b"retry-after", str(RETRY_AFTER_S).encode())]
            await send_json(send, 503, JOURNAL_FAILED, retry)
            return
        self.received += len(events)
        await send_json(send, 200, b"{}")

    async def _metrics(self, send: Send) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Figures(self))
        body = generate_latest(registry)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", CONTENT_TYPE_LATEST.encode()),
            (b"content-length", str(len(body)).encode()),
        ]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # startup
        try:
            backlog = await self.pending.open()
        except (sqlite3.Error, OSError) as exc:
            await send({"type": "lifespan.startup.failed", "message": f"journal: {exc}"})
            return
        log.info("intake up, %d events from the journal to hand on", backlog)
        task = asyncio.create_task(self.relay.run(), name="intake-relay")
        await send({"type": "lifespan.startup.complete"})
        await receive()  # shutdown
        await cancel_all([task])
        await self._http.aclose()
        await self.pending.close()
        await send({"type": "lifespan.shutdown.complete"})


class _Figures(Collector):
    def __init__(self, app: IntakeApp) -> None:
        self._app = app

    def collect(self) -> list[Metric]:
        health = self._app.health()
        pending = GaugeMetricFamily(
            "chargenet_intake_pending", "Events journaled, not yet handed on to the server"
        )
        pending.add_metric([], health["pending"])
        failures = GaugeMetricFamily(
            "chargenet_intake_handon_failures", "Hand-ons to the server failed in a row"
        )
        failures.add_metric([], health["failures"])
        received = CounterMetricFamily(
            "chargenet_intake_received", "Events received in verified webhooks"
        )
        received.add_metric([], self._app.received)
        handed = CounterMetricFamily(
            "chargenet_intake_handed_on", "Events the server has taken from the intake"
        )
        handed.add_metric([], health["handedOn"])
        return [pending, failures, received, handed]
