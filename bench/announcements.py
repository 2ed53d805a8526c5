"""Announcement fan-out: an announcement to 10,000 residents by LINE multicast at the sandbox.

The app runs in this process on a fresh store per run (SQLite; PostgreSQL with its default
durability with `--stores sqlite,postgresql`), the LINE sandbox in its own (`chargenet
sandbox`, real HTTP). `--residents` registered residents of one district (a fifth of them
reading English) are seeded, an announcement to the district is drafted and sent through the
API, and the clock runs from the send's request to the last batch the sandbox accepted. Each
run has its multicast rate limit (`line_multicast_requests_per_s`, from `--limits`) and,
with `--faults N`, LINE answers the first N multicasts 429 and the N after 500. A last run
sends to `--large` residents (100,000: 200 batches) at the first limit (the default
setting), enough requests for the limiter's steady rate to show (10,000 residents are 20
batches, within its burst).

Figures per run: batches (requests of at most 500 residents, one language each), seconds to
deliver all and to the first batch (reading the audience and writing the batches), the
requests/s achieved from the first batch to the last and its ratio to the configured
limit, the busiest second at the sandbox (requests with their `at` within one second of
each other) against LINE's own limit (200 multicast requests a second), attempts, and
residents lost (never delivered) and doubled (delivered twice): both must be 0, and the
busiest second at most LINE's limit, else the run fails. `python -m bench.announcements`
prints a table and writes bench/results/announcements.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from pydantic import SecretStr
from sqlalchemy import func, select

from bench.platforms import busiest_second
from bench.processes import BenchFailed, fail_loudly
from bench.stores import describe, durable_cluster, store_settings
from server.api.app import create_app
from server.db.models import OutboxMessage
from server.registry import load_demo_registry
from server.settings import Settings
from tests.postgres import create_database
from tests.sandboxes import Sandbox
from tests.server.announcements.residents import Group, seed
from tests.server.api.conftest import ADMIN, TOKEN, client_of

RESULTS: Final = Path(__file__).resolve().parent / "results" / "announcements.json"
LINE_MULTICAST_LIMIT: Final = 200
"""LINE's documented limit for multicast, requests a second per channel."""
DISTRICT: Final = "肱南"
DEADLINE_S: Final = 600.0


@dataclass
class Run:
    store: str
    limit_per_s: float
    faults: int
    residents: int
    batches: int
    seconds: float
    """From the send's request to the last batch accepted at the sandbox."""
    first_s: float
    """From the send's request to the first batch: reading the audience, writing the rows."""
    requests_per_s: float
    """Batches over the span from the first to the last (the sender's pace)."""
    ratio_to_limit: float
    busiest_second: int
    attempts: int
    lost: int
    doubled: int


def settings_for(sandbox: Sandbox, url: str, limit: float) -> Settings:
    env: dict[str, Any] = {k.removeprefix("CHARGENET_").lower(): v
                           for k, v in sandbox.server_env.items()}  # fmt: skip
    env |= {"database_url": url, "mqtt_url": None, "admin_token": SecretStr(TOKEN),
            "line_multicast_requests_per_s": limit}  # fmt: skip
    return Settings(**env)


async def fan_out(sandbox: Sandbox, url: str, store: str, limit: float, faults: int,
                  residents: int) -> Run:  # fmt: skip
    sandbox.reset()
    if faults:
        sandbox.faults("line", count=faults, status=429, calls=("multicast",))
        sandbox.faults("line", count=faults, status=500, calls=("multicast",))
    app = create_app(settings_for(sandbox, url, limit))
    async with app.router.lifespan_context(app), client_of(app) as http:
        db = app.state.services.db
        await load_demo_registry(db)
        put = await http.put("/api/v1/districts", params={"municipality": "大洲市"},
                             json={"districts": [DISTRICT]}, headers=ADMIN)  # fmt: skip
        if put.status_code != 200:
            raise BenchFailed(f"districts: {put.status_code} {put.text}")
        english = residents // 5
        seeded = set(await seed(db, Group(residents - english)))
        seeded |= set(await seed(db, Group(english, language="en")))
        body = {"municipality": "大洲市", "districts": [DISTRICT],
                "text_ja": "大洲小学校で12:00から炊き出しがあります。",
                "text_en": "Food at Ozu Elementary School from 12:00."}  # fmt: skip
        made = await http.post("/api/v1/announcements", json=body, headers=ADMIN)
        if made.status_code != 201 or made.json()["recipients"] != residents:
            raise BenchFailed(f"draft: {made.status_code} {made.text[:300]}")
        number = made.json()["announcement"]["id"]
        started = time.time()
        sent = await http.post(f"/api/v1/announcements/{number}/send", headers=ADMIN)
        if sent.status_code != 200:
            raise BenchFailed(f"send: {sent.status_code} {sent.text[:300]}")
        while True:
            listed = (await http.get("/api/v1/announcements", headers=ADMIN)).json()
            deliveries = listed["announcements"][0]["deliveries"]
            if not deliveries["pending"]:
                break
            if time.time() - started > DEADLINE_S:
                raise BenchFailed(f"not delivered within {DEADLINE_S:.0f} s: {deliveries}")
            await asyncio.sleep(0.05)
        async with db.transaction() as session:
            attempts = int(await session.scalar(
                select(func.sum(OutboxMessage.attempts))
                .where(OutboxMessage.source == f"announcement:{number}")) or 0)  # fmt: skip
    multicasts = [d for d in sandbox.line_deliveries() if d["via"] == "multicast"]
    moments = [datetime.fromisoformat(d["at"].replace("Z", "+00:00")).timestamp()
               for d in multicasts]  # fmt: skip
    heard = Counter(u for d in multicasts for u in d["to"])
    seconds, first_s = max(moments) - started, min(moments) - started
    rate = (len(multicasts) - 1) / max(seconds - first_s, 1e-3)
    return Run(
        store=store, limit_per_s=limit, faults=faults, residents=residents,
        batches=len(multicasts), seconds=round(seconds, 3), first_s=round(first_s, 3),
        requests_per_s=round(rate, 1),
        ratio_to_limit=round(rate / limit, 3), busiest_second=busiest_second(moments),
        attempts=attempts, lost=len(seeded - heard.keys()),
        doubled=sum(n - 1 for n in heard.values()) + len(heard.keys() - seeded),
    )  # fmt: skip


HEADER: Final = ("store", "limit req/s", "faults 429+500", "residents", "batches", "s",
                 "s to first", "req/s", "÷ limit", "busiest s (LINE: 200)", "attempts", "lost",
                 "doubled")  # fmt: skip


def row(run: Run) -> list[str]:
    return [str(v) for v in asdict(run).values()]


def configurations(args: argparse.Namespace) -> list[tuple[int, float, int]]:
    """(residents, limit, faults) of each run: `--residents` at each limit, again at the
    first with the faults, and `--large` residents at the first (the limiter at work)."""
    limits = [float(x) for x in args.limits.split(",")]
    found = [(args.residents, limit, 0) for limit in limits]
    found.append((args.residents, limits[0], args.faults))
    if args.large:
        found.append((args.large, limits[0], 0))
    return found


def run_all(args: argparse.Namespace) -> int:
    runs: list[Run] = []
    durability: dict[str, dict[str, str]] = {}
    cluster = None
    workdir = Path(tempfile.mkdtemp(prefix="chargenet-bench-announcements-"))
    sandbox = Sandbox(workdir / "sandbox")
    print(" | ".join(HEADER), flush=True)
    try:
        for store in args.stores.split(","):
            for residents, limit, faults in configurations(args):
                if store == "sqlite":
                    url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(dir=workdir)}/bench.sqlite3"
                else:
                    cluster = cluster or durable_cluster()
                    url = create_database(cluster.url)
                runs.append(asyncio.run(fan_out(sandbox, url, store, limit, faults, residents)))
                durability[store] = store_settings(url)
                print(" | ".join(row(runs[-1])), flush=True)
    finally:
        sandbox.stop()
        if cluster is not None:
            cluster.stop()
    for store, settings in durability.items():
        print(f"{store}: {describe(settings)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]},
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "line_multicast_limit_per_s": LINE_MULTICAST_LIMIT, "durability": durability,
        "runs": [asdict(r) for r in runs],
    }, indent=2, ensure_ascii=False) + "\n")  # fmt: skip
    print(f"wrote {args.out}")
    bad = [r for r in runs if r.lost or r.doubled or r.busiest_second > LINE_MULTICAST_LIMIT]
    if bad:
        raise BenchFailed(f"lost, doubled or over LINE's limit: {[asdict(r) for r in bad]}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.announcements", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--residents", type=int, default=10_000)
    parser.add_argument("--limits", default="80,10,2",
                        help="multicast limits (requests/s) to run at; the first is the "
                             "default setting, run again with --faults")  # fmt: skip
    parser.add_argument("--faults", type=int, default=4, help="429s, then as many 500s")
    parser.add_argument("--large", type=int, default=100_000,
                        help="residents of one more run at the first limit (0: none): "
                             "enough batches for the limiter to hold them back")  # fmt: skip
    parser.add_argument("--stores", default="sqlite")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    return fail_loudly("announcements", lambda: run_all(args))


if __name__ == "__main__":
    raise SystemExit(main())
