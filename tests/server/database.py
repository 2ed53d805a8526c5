"""One way for a test to run a scenario against a migrated database of either store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from server.db.migrate import upgrade
from server.db.session import Database


def with_database(database_url: str, scenario: Callable[[Database], Awaitable[None]]) -> None:
    """Migrate, open, run `scenario(db)` in a fresh event loop, close."""
    upgrade(database_url)

    async def main() -> None:
        db = Database(database_url)
        try:
            await scenario(db)
        finally:
            await db.dispose()

    asyncio.run(main())
