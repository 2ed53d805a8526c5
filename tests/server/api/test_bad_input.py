"""Bad input at the HTTP doors (issue 11, item 5): oversized bodies are refused with 413
before they are read in full; a very long or SQL-looking resident id is refused with a 422
naming the field, or stored verbatim and read back identically."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from server.api.body_limit import MAX_BODY
from server.api.bookings import MAX_BODY as BOOKING_MAX_BODY
from server.line.webhook import MAX_BODY as WEBHOOK_MAX_BODY
from server.lineworks.callbacks import MAX_BODY as CALLBACK_MAX_BODY
from tests.fuzz.hostile import SQL_LIKE
from tests.server.api.conftest import ADMIN, next_hour

pytestmark = pytest.mark.anyio
CHUNK = 4096


class Body:
    """A request body sent in chunks, counting how many the server pulled."""

    def __init__(self, size: int) -> None:
        self.chunks = -(-size // CHUNK)
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            yield b"[" + b" " * (CHUNK - 2) + b"]"


@pytest.mark.parametrize(("path", "limit"), [
    ("/api/v1/bookings", BOOKING_MAX_BODY),
    ("/line/webhook", WEBHOOK_MAX_BODY),
    ("/lineworks/callback", CALLBACK_MAX_BODY),
])  # fmt: skip
async def test_an_oversized_body_is_413_before_it_is_read_in_full(
    client: httpx.AsyncClient, path: str, limit: int
) -> None:
    body = Body(4 * limit)
    reply = await client.post(path, content=body, headers={**ADMIN,
                              "Content-Type": "application/json"})  # fmt: skip
    assert reply.status_code == 413, reply.text
    assert reply.json()["error"]["code"] == "too_large"
    assert body.pulled <= limit // CHUNK + 2 < body.chunks


@pytest.mark.parametrize(("path", "content_type"), [
    ("/api/v1/operators", "application/json"),
    ("/api/v1/incidents/1/resolve", "application/json"),
])  # fmt: skip
async def test_a_stranger_s_oversized_body_elsewhere_is_413_not_buffered_before_the_401(
    client: httpx.AsyncClient, path: str, content_type: str
) -> None:
    """FastAPI reads a body before the bearer check, so the floor under every route is
    what stops an anonymous client making the server hold megabytes."""
    body = Body(4 * MAX_BODY)
    typed = {"Content-Type": content_type}
    streamed = await client.post(path, content=body, headers=typed)
    assert streamed.status_code == 413, streamed.text
    assert body.pulled <= MAX_BODY // CHUNK + 2 < body.chunks
    declared = await client.post(path, content=b"x" * (MAX_BODY + 1), headers=typed)
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "too_large"
    small = await client.post(path, content=b"{}", headers=typed)
    assert small.status_code == 401, small.text  # under the floor, the route's own answer


@pytest.mark.parametrize("kind", ["stations", "gsi-geojson"])
async def test_a_stranger_s_import_is_401_before_its_body_is_read(
    client: httpx.AsyncClient, kind: str
) -> None:
    """The import reads its body itself (a published file may be Shift_JIS), after the
    bearer check: a stranger is answered without the server holding the body."""
    body = Body(4 * MAX_BODY)
    path = f"/api/v1/registry/import?kind={kind}"
    typed = {"Content-Type": "text/csv"}
    streamed = await client.post(path, content=body, headers=typed)
    assert streamed.status_code == 401, streamed.text
    assert body.pulled <= MAX_BODY // CHUNK + 2 < body.chunks
    declared = await client.post(path, content=b"x" * (MAX_BODY + 1), headers=typed)
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "too_large"


async def test_a_10000_character_resident_id_is_422_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    booking = {"resident_id": "r" * 10_000, "station_id": "ozu-01",
               "window_start": next_hour().isoformat()}  # fmt: skip
    reply = await client.post("/api/v1/bookings", json=booking, headers=ADMIN)
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["field"] == "resident_id"


@pytest.mark.parametrize("resident_id", [s for s in SQL_LIKE if len(s) <= 100])
async def test_a_sql_looking_resident_id_is_stored_verbatim(
    client: httpx.AsyncClient, resident_id: str
) -> None:
    booking = {"resident_id": resident_id, "station_id": "ozu-01",
               "window_start": next_hour().isoformat()}  # fmt: skip
    made = await client.post("/api/v1/bookings", json=booking, headers=ADMIN)
    assert made.status_code == 201, made.text
    read = await client.get(f"/api/v1/bookings/{made.json()['id']}", headers=ADMIN)
    assert read.status_code == 200 and read.json()["resident_id"] == resident_id
    again = await client.post("/api/v1/bookings", json={**booking, "resident_id": "r-2"},
                              headers=ADMIN)  # fmt: skip
    assert again.status_code == 201, again.text  # the bookings table is still there
