"""An announcement to a district of 1,200 registered residents through the app, delivered by
LINE multicast at the LINE sandbox over real HTTP, on SQLite and PostgreSQL: batches of at
most 500, one language each, every resident exactly once, while LINE answers 429 and then
500 for a while and hangs once past our timeout (a lost answer: the retry key's 409)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select

from server.api.app import create_app
from server.api.deps import Services
from server.db.models import OutboxMessage
from server.registry import load_demo_registry
from tests.conditions import async_read_until, wait_until
from tests.sandboxes import Sandbox
from tests.server.announcements.residents import Group, seed
from tests.server.api.conftest import ADMIN, TOKEN, client_of
from tests.server.lineworks.works import works_settings

ANNOUNCEMENT = {
    "municipality": "大洲市", "districts": ["肱南"],
    "text_ja": "大洲小学校で12:00から炊き出しがあります。",
    "text_en": "Food at Ozu Elementary School from 12:00.",
}  # fmt: skip


def test_a_district_of_1200_hears_it_once_each_through_429_and_500(
    sandbox: Sandbox, database_url: str
) -> None:
    settings = works_settings(
        sandbox, database_url=database_url, mqtt_url=None, admin_token=SecretStr(TOKEN),
        delivery_backoff_max_s=0.2, line_reply_within_s=10.0,
    )  # fmt: skip
    sandbox.faults("line", count=3, status=429, calls=("multicast",))
    sandbox.faults("line", count=1, delay_s=1.5, calls=("multicast",))  # past our 1 s timeout
    sandbox.faults("line", count=3, status=500, calls=("multicast",))
    seeded: dict[str, list[str]] = {}
    found: dict[str, Any] = {}

    async def scenario() -> None:
        app = create_app(settings)
        async with app.router.lifespan_context(app), client_of(app) as http:
            services: Services = app.state.services
            await load_demo_registry(services.db)
            put = await http.put("/api/v1/districts", params={"municipality": "大洲市"},
                                 json={"districts": ["肱南", "大洲"]}, headers=ADMIN)  # fmt: skip
            assert put.status_code == 200
            seeded["ja"] = await seed(services.db, Group(1000))
            seeded["en"] = await seed(services.db, Group(200, language="en", stay="car"))
            seeded["other"] = await seed(services.db, Group(30, district="大洲"))
            seeded["blocked"] = await seed(services.db, Group(20, following=False))
            created = await http.post("/api/v1/announcements", json=ANNOUNCEMENT, headers=ADMIN)
            assert created.status_code == 201, created.text
            preview = created.json()
            assert (preview["recipients"], preview["languages"], preview["batches"]) == (
                1200, {"ja": 1000, "en": 200}, 3)  # fmt: skip
            assert preview["per_target"]["districts"] == {"肱南": 1200}
            assert preview["unfollowed"] == 20
            number = preview["announcement"]["id"]
            sent = await http.post(f"/api/v1/announcements/{number}/send", headers=ADMIN)
            assert sent.status_code == 200, sent.text
            assert sent.json()["deliveries"]["pending"] == 1200
            again = await http.post(f"/api/v1/announcements/{number}/send", headers=ADMIN)
            assert again.status_code == 409 and again.json()["error"]["code"] == "already_sent"

            async def counts() -> dict[str, int]:
                listed = await http.get("/api/v1/announcements", headers=ADMIN)
                (one,) = listed.json()["announcements"]
                deliveries: dict[str, int] = one["deliveries"]
                return deliveries

            found["deliveries"] = await async_read_until(
                counts, lambda c: c["pending"] == 0, timeout_s=60.0, what="every batch settled"
            )
            audit = await http.get("/api/v1/audit", params={"subject": f"announcement:{number}"},
                                   headers=ADMIN)  # fmt: skip
            found["audit"] = audit.json()["entries"]
            async with services.db.transaction() as session:
                mine = OutboxMessage.source == f"announcement:{number}"
                batches = await session.scalars(select(OutboxMessage).where(mine))
                found["batches"] = [(b.recipients, b.recipient_count) for b in batches]

    asyncio.run(scenario())
    assert found["deliveries"] == {"recipients": 1200, "batches": 3, "sent": 1200, "failed": 0,
                                   "pending": 0}  # fmt: skip
    assert sandbox.queued_faults("line") == 0  # every fault was met
    # Sent, a batch keeps its count and no user id.
    assert sorted(found["batches"], key=lambda b: b[1] or 0) == [([], 200), ([], 500), ([], 500)]
    # The hung call is carried out after we gave up on it, and its batch was retried: one
    # of the two meets the other's retry key (409), and only then is the count final.
    wait_until(lambda: "multicast answered 409: The retry key is already accepted"
               in sandbox.log_text(), 10, "the hung call ended")  # fmt: skip
    multicasts = [d for d in sandbox.line_deliveries() if d["via"] == "multicast"]
    assert all(len(d["to"]) <= 500 for d in multicasts)
    assert sorted(len(d["to"]) for d in multicasts) == [200, 500, 500]
    assert len({d["retry_key"] for d in multicasts}) == 3
    assert all(uuid.UUID(d["retry_key"]) for d in multicasts)
    heard = Counter(u for d in multicasts for u in d["to"])
    assert set(heard.values()) == {1} and len(heard) == 1200  # exactly once each
    assert set(heard) == set(seeded["ja"]) | set(seeded["en"])
    for delivery in multicasts:
        (message,) = delivery["messages"]
        language = "ja" if delivery["to"][0] in seeded["ja"] else "en"
        assert all(u in seeded[language] for u in delivery["to"])  # one language a batch
        wanted = ANNOUNCEMENT[f"text_{language}"]
        heading = "【お知らせ】大洲市" if language == "ja" else "[Announcement] 大洲市"
        assert message == {"type": "text", "text": f"{heading}\n{wanted}"}
    sent_entry, created_entry = found["audit"]
    assert (sent_entry["action"], sent_entry["actor"]) == ("announcement.sent", "admin")
    detail = sent_entry["detail"]
    assert (detail["recipients"], detail["batches"], detail["languages"]) == (
        1200, 3, {"ja": 1000, "en": 200})  # fmt: skip
    assert detail["districts"] == ["肱南"] and detail["unfollowed"] == 20
    assert created_entry["action"] == "announcement.created"
    logged = json.dumps(found["audit"])
    assert not any(u in logged for ids in seeded.values() for u in ids)  # counts, never ids
