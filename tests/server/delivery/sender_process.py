"""`python -m tests.server.delivery.sender_process`: the server's outbox sender with the
LINE transport and nothing else, settings from the environment, for tests that SIGKILL it
mid-send. Prints `sending` once running."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from server.db.session import Database
from server.delivery.sender import OutboxSender
from server.line.client import LineTransport
from server.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


async def main() -> None:
    settings = Settings()
    db = Database(settings.database_url)
    sender = OutboxSender(db, settings, utc_now, [LineTransport(settings)], poll_s=0.2)
    print("sending", flush=True)
    await sender.run()


if __name__ == "__main__":
    asyncio.run(main())
