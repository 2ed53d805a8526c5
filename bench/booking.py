"""Booking burst: a city announces the service and everyone books at once.

40,000 booking requests over 10 simulated minutes, ten times the later rate in the first
minute (21,053 requests in minute one, then 35/s). Time is compressed: the first minute
so that it offers `--peak` requests/s (default 1,200/s), the quiet tail `--tail-factor`
times more (so a default run takes about 40 s per configuration). Arrivals are open-loop
(Poisson at the scheduled rate); latency runs from a request's scheduled time to its
answer, so a server that falls behind shows it.

Each request books a resident at one of 200 shelters (16 ports each, two 3 kWh batteries)
near a random point of the city, in a window drawn from the next few hours (sooner more
likely). Requests go straight to `BookingService` (this bench does not go through HTTP), in
one and in two OS processes sharing the database, against SQLite (WAL, synchronous=NORMAL)
and a throwaway PostgreSQL cluster with default durability (fsync on, synchronous_commit
on). After each run the database is checked for overbookings: any window with more active
bookings than ports, a port booked twice, a station beyond its energy, or a window load
that disagrees with its bookings.

`python -m bench.booking` prints a table and writes bench/results/booking.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import platform
import random
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from sqlalchemy import text

from server.booking.service import BookingService
from server.db.migrate import upgrade
from server.db.models import Gateway, Port, Station, Unit
from server.db.session import Database
from server.errors import Conflict
from server.settings import Settings
from tests.postgres import PostgresCluster, _bin, create_database

RESULTS = Path(__file__).resolve().parent / "results" / "booking.json"
CITY = (33.84, 132.77)
STATIONS = 200
PORTS = 16
RATED_WH = 3000.0
BURST_SHARE = 10 / 19  # 10r x 60 s of (10r x 60 s + r x 540 s)


@dataclass
class Result:
    store: str
    processes: int
    requests: int
    booked: int
    full: int
    errors: int
    burst_s: float
    offered_peak_per_s: float
    booked_per_s_burst: float
    booked_per_s_overall: float
    p50_ms: float
    p99_ms: float
    p99_burst_ms: float
    overbookings: int


def arrivals(n: int, peak: float, tail_factor: float, seed: int) -> list[float]:
    """Scheduled offsets (s): a Poisson burst at `peak`/s, then the tail compressed."""
    rng = random.Random(seed)
    burst = round(n * BURST_SHARE)
    out, t = [], 0.0
    for _ in range(burst):
        t += rng.expovariate(peak)
        out.append(t)
    tail_rate = peak / 10 * tail_factor
    for _ in range(n - burst):
        t += rng.expovariate(tail_rate)
        out.append(t)
    return out


def city(seed: int) -> list[tuple[str, float, float]]:
    rng = random.Random(seed)
    return [
        (f"s{i:03d}", CITY[0] + rng.uniform(-0.03, 0.03), CITY[1] + rng.uniform(-0.035, 0.035))
        for i in range(STATIONS)
    ]


async def seed_city(url: str, stations: list[tuple[str, float, float]], now: datetime) -> None:
    upgrade(url)
    db = Database(url)
    try:
        async with db.transaction() as session:
            for sid, lat, lon in stations:
                session.add(Station(id=sid, name_ja=sid, name_en=sid, latitude=lat,
                                    longitude=lon, slot_minutes=30))  # fmt: skip
                session.add(Gateway(gw_id=f"gw-{sid}", state="online", last_seen_at=now))
                for b in (1, 2):
                    unit = Unit(gw_id=f"gw-{sid}", unit=f"rs485-1.{b}", station_id=sid,
                                online=True, received_at=now, soc_pct=100.0,
                                rated_wh=RATED_WH)  # fmt: skip
                    session.add(unit)
                    await session.flush()
                    for p in range(1, PORTS // 2 + 1):
                        session.add(Port(unit_pk=unit.id, port=p, status="available"))
    finally:
        await db.dispose()


def settings(url: str) -> Settings:
    return Settings(database_url=url, mqtt_url=None, report_period_s=3600.0)


def request_plan(
    n: int, seed: int, stations: list[tuple[str, float, float]]
) -> list[tuple[int, str, int]]:
    """(resident, station, window index) per request: a nearby shelter, sooner likelier."""
    rng = random.Random(seed + 1)
    plan = []
    for i in range(n):
        lat = CITY[0] + rng.uniform(-0.03, 0.03)
        lon = CITY[1] + rng.uniform(-0.035, 0.035)
        near = sorted(stations, key=lambda s: (s[1] - lat) ** 2 + (s[2] - lon) ** 2)[:3]
        sid = rng.choice(near)[0]
        window = min(int(rng.expovariate(0.15)), 21)
        plan.append((i, sid, window))
    return plan


def worker(url: str, jobs: list[tuple[float, int, str, int]], start_wall: float,
           first_window: str, out: Queue[Any]) -> None:  # fmt: skip
    """One server process: its share of the arrivals against its own BookingService."""
    out.put(asyncio.run(_work(url, jobs, start_wall, datetime.fromisoformat(first_window))))


async def _work(
    url: str, jobs: list[tuple[float, int, str, int]], start_wall: float, first: datetime
) -> list[tuple[float, float, str]]:
    db = Database(url)
    service = BookingService(db, settings(url))
    done: list[tuple[float, float, str]] = []

    async def one(at: float, resident: int, sid: str, window: int) -> None:
        start = first + timedelta(minutes=30 * window)
        try:
            await service.book(f"r{resident}", sid, start)
            outcome = "booked"
        except Conflict as exc:
            outcome = exc.code
        except Exception as exc:  # counted, never hidden
            outcome = f"error:{type(exc).__name__}:{str(exc)[:300]}"
        done.append((at, time.time() - start_wall - at, outcome))

    try:
        await service.options(CITY[0], CITY[1], first)  # warm the snapshot and the pool
        tasks = []
        delay = start_wall - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        for at, resident, sid, window in jobs:
            wait = start_wall + at - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one(at, resident, sid, window)))
        await asyncio.gather(*tasks)
    finally:
        await service.close()
        await db.dispose()
    return done


async def overbookings(url: str) -> int:
    """Violations found in the database: must be 0."""
    db = Database(url)
    checks = [
        # more active bookings in a window than the station has ports
        f"""SELECT COALESCE(SUM(n - {PORTS}), 0) FROM (SELECT COUNT(*) AS n FROM bookings
            WHERE status IN ('active','checked_in') GROUP BY station_id, window_start) t
            WHERE n > {PORTS}""",
        # a port twice in a window
        """SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) AS n FROM bookings
           WHERE status IN ('active','checked_in') GROUP BY unit_pk, port, window_start) t
           WHERE n > 1""",
        # a station beyond what its batteries can charge
        f"""SELECT COALESCE(SUM(n - {math.floor(2 * RATED_WH / 15.0)}), 0) FROM (
            SELECT COUNT(*) AS n FROM bookings WHERE status IN ('active','checked_in')
            GROUP BY station_id) t WHERE n > {math.floor(2 * RATED_WH / 15.0)}""",
        # window loads that disagree with the bookings
        """SELECT COUNT(*) FROM window_loads w WHERE w.booked != (SELECT COUNT(*) FROM bookings b
           WHERE b.station_id = w.station_id AND b.window_start = w.window_start
           AND b.status IN ('active','checked_in'))""",
    ]
    try:
        async with db.transaction() as session:
            found = [int((await session.execute(text(q))).scalar_one()) for q in checks]
        return sum(found)
    finally:
        await db.dispose()


def run(store: str, url: str, processes: int, args: argparse.Namespace) -> Result:
    stations = city(args.seed)
    now = datetime.now(UTC)
    asyncio.run(seed_city(url, stations, now))
    first = (now + timedelta(minutes=45)).replace(second=0, microsecond=0)  # >= 15 min ahead
    first = first.replace(minute=0 if first.minute < 30 else 30)
    offsets = arrivals(args.requests, args.peak, args.tail_factor, args.seed)
    plan = request_plan(args.requests, args.seed, stations)
    jobs = [(at, r, sid, w) for at, (r, sid, w) in zip(offsets, plan, strict=True)]
    ctx = multiprocessing.get_context("spawn")
    queue: Queue[Any] = ctx.Queue()
    start_wall = time.time() + 3.0 + processes  # time for the workers to start and warm up
    procs = [
        ctx.Process(
            target=worker, args=(url, jobs[k::processes], start_wall, first.isoformat(), queue)
        )
        for k in range(processes)
    ]
    for p in procs:
        p.start()
    done = [row for _ in procs for row in queue.get()]
    errors = Counter(d[2] for d in done if d[2].startswith("error"))
    for error, n in errors.most_common(5):
        print(f"  {n} x {error}", flush=True)
    for p in procs:
        p.join()
    burst_n = round(args.requests * BURST_SHARE)
    burst_end_at = offsets[burst_n - 1]
    burst = [d for d in done if d[0] <= burst_end_at]
    burst_span = max(at + lat for at, lat, _ in burst)
    booked = [d for d in done if d[2] == "booked"]
    lat_ms = sorted(lat * 1000 for _, lat, _ in done)
    burst_ms = sorted(lat * 1000 for _, lat, _ in burst)
    total_span = max(at + lat for at, lat, _ in done)
    return Result(
        store=store, processes=processes, requests=len(done), booked=len(booked),
        full=sum(1 for d in done if d[2] == "window_full"),
        errors=sum(1 for d in done if d[2].startswith("error") or d[2] == "already_booked"),
        burst_s=round(burst_span, 2), offered_peak_per_s=args.peak,
        booked_per_s_burst=round(sum(1 for d in burst if d[2] == "booked") / burst_span, 1),
        booked_per_s_overall=round(len(booked) / total_span, 1),
        p50_ms=round(statistics.median(lat_ms), 1), p99_ms=round(_pct(lat_ms, 0.99), 1),
        p99_burst_ms=round(_pct(burst_ms, 0.99), 1),
        overbookings=asyncio.run(overbookings(url)),
    )  # fmt: skip


def _pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def durable_cluster() -> PostgresCluster:
    """A throwaway cluster with PostgreSQL's default durability (fsync, synchronous_commit)."""
    cluster = PostgresCluster()
    cluster._run(_bin("initdb"), "-D", str(cluster.data), "-U", "postgres", "--auth=trust",
                 "-E", "UTF8")  # fmt: skip
    options = (
        f"-p {cluster.port} -k {cluster.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
    )
    cluster._run(_bin("pg_ctl"), "-D", str(cluster.data), "-o", options, "-w", "-t", "60",
                 "-l", str(cluster.root / "log"), "start")  # fmt: skip
    return cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=40_000)
    parser.add_argument("--peak", type=float, default=1_200.0, help="offered/s in minute one")
    parser.add_argument("--tail-factor", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--processes", default="1,2")
    args = parser.parse_args(argv)
    results: list[Result] = []
    cluster = None
    try:
        for store in args.stores.split(","):
            for n in (int(p) for p in args.processes.split(",")):
                if store == "sqlite":
                    scratch = tempfile.mkdtemp(prefix="chargenet-bench-")
                    url = f"sqlite+aiosqlite:///{scratch}/bench.sqlite3"
                else:
                    cluster = cluster or durable_cluster()
                    url = create_database(cluster.url)
                result = run(store, url, n, args)
                results.append(result)
                print(_row(result), flush=True)
    finally:
        if cluster is not None:
            cluster.stop()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "path": "BookingService directly (no HTTP), 1 and 2 OS processes",
        "durability": "PostgreSQL defaults (fsync on, synchronous_commit on); SQLite WAL, "
                      "synchronous=NORMAL",
        "args": vars(args), "results": [asdict(r) for r in results],
    }, indent=2) + "\n")  # fmt: skip
    return 0 if all(r.overbookings == 0 for r in results) else 1


HEADER = ("store", "procs", "requests", "booked", "full", "errors", "burst s", "offered/s",
          "booked/s burst", "booked/s all", "p50 ms", "p99 ms", "p99 burst ms",
          "overbooked")  # fmt: skip


def _row(r: Result) -> str:
    cells = (r.store, r.processes, r.requests, r.booked, r.full, r.errors, r.burst_s,
             r.offered_peak_per_s, r.booked_per_s_burst, r.booked_per_s_overall, r.p50_ms,
             r.p99_ms, r.p99_burst_ms, r.overbookings)  # fmt: skip
    return " | ".join(str(c) for c in cells)


if __name__ == "__main__":
    print(" | ".join(HEADER))
    raise SystemExit(main())
