"""The outbox on `/metrics`: unsent messages per platform (from the database) and this
process's attempts by outcome (from its sender)."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from server.api.metrics import Metrics
from server.db.session import Database
from server.delivery.outbox import Platform
from server.delivery.transport import Attempt, Outgoing
from server.ingest.fanout import FanOut
from tests.server.database import with_database
from tests.server.delivery.test_sender import ScriptedPlatform, add, running, settled, utc_now


def test_unsent_and_attempts(database_url: str) -> None:
    async def fail_first(msg: Outgoing) -> Attempt:
        return Attempt.retry("LINE 500") if msg.attempt == 1 else Attempt.sent()

    async def scenario(db: Database) -> None:
        await add(db, "U1")
        await add(db, "U2")
        async with running(db, [ScriptedPlatform(script=fail_first)]) as sender:
            sender.wake()
            await settled(db)
            await add(db, "channel:crew", Platform.LINEWORKS)  # no transport: it waits
            metrics = Metrics()
            later = utc_now() + timedelta(minutes=10)
            await metrics.refresh(db, None, None, FanOut(db), sender, later)
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(metrics.render().decode())
            for s in family.samples
        }
        assert samples[("chargenet_outbox_unsent", (("platform", "lineworks"),))] == 1
        assert ("chargenet_outbox_unsent", (("platform", "line"),)) not in samples
        oldest = samples[("chargenet_outbox_oldest_age_seconds", (("platform", "lineworks"),))]
        assert 600 <= oldest < 660  # queued just now, read as of ten minutes on
        attempts = "chargenet_outbox_attempts_total"
        assert samples[(attempts, (("outcome", "sent"), ("platform", "line")))] == 2
        assert samples[(attempts, (("outcome", "retry"), ("platform", "line")))] == 2

    with_database(database_url, scenario)
