"""The API tests' app and client (`tests.server.api.conftest`), for the announcements."""

from __future__ import annotations

from tests.server.api.conftest import anyio_backend, app, client, sqlite_url

__all__ = ["anyio_backend", "app", "client", "sqlite_url"]
