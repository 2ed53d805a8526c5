"""The districts API: an operator puts its municipality's list (PUT, or a CSV file), and
reads it back; another municipality's list is out of its reach."""

from __future__ import annotations

import httpx
import pytest

from tests.server.api.conftest import ADMIN
from tests.server.api.test_operators import make

pytestmark = pytest.mark.anyio


async def test_a_municipality_puts_its_own_districts_only(client: httpx.AsyncClient) -> None:
    ozu = await make(client, "ozu-sato", "municipality", "大洲市")
    put = await client.put("/api/v1/districts", params={"municipality": "大洲市"},
                           json={"districts": ["大洲", "肱南"]}, headers=ozu)  # fmt: skip
    assert put.status_code == 200 and put.json() == {"districts": ["大洲", "肱南"]}
    other = await client.put("/api/v1/districts", params={"municipality": "内子町"},
                             json={"districts": ["内子"]}, headers=ozu)  # fmt: skip
    assert other.status_code == 403 and other.json()["error"]["code"] == "forbidden"
    long = await client.put("/api/v1/districts", params={"municipality": "大洲市"},
                            json={"districts": ["あ" * 21]}, headers=ozu)  # fmt: skip
    assert long.status_code == 422
    csv = "municipality,district\n内子町,内子\n内子町,五十崎\n"
    imported = await client.post("/api/v1/districts", content=csv.encode(),
                                 headers={**ADMIN, "Content-Type": "text/csv"})  # fmt: skip
    assert imported.status_code == 200 and imported.json()["created"] == ["内子町"]
    read = await client.get("/api/v1/districts", params={"municipality": "内子町"}, headers=ozu)
    assert read.json() == {"districts": ["内子", "五十崎"]}
    assert (await client.get("/api/v1/districts", params={"municipality": "大洲市"})).status_code \
        == 401  # fmt: skip
