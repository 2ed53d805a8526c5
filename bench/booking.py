"""Booking burst: a city announces the service and everyone books at once.

40,000 booking requests over 10 simulated minutes, ten times the later rate in the first
minute (21,053 requests in minute one, then 35/s). Time is compressed: the first minute
so that it offers `--peak` requests/s (default 1,200/s), the quiet tail `--tail-factor`
times more (so a default run takes about 40 s per configuration). Arrivals are open-loop
(Poisson at the scheduled rate); latency runs from a request's scheduled time to its
answer, so a server that falls behind shows it.

Each request books a resident at one of 200 shelters (16 ports each, two 3 kWh batteries)
near a random point of the city, in a window drawn from the next few hours (sooner more
likely). Requests go through HTTP (`POST /api/v1/bookings`, as a partner app with its API
key) to one or two real `chargenet
server` processes sharing the database (no MQTT; the registry and live ports are seeded in
the database first), from a load generator in its own process(es): raw HTTP/1.1 over
keep-alive connections on uvloop, so that it stays far from being the bottleneck (its CPU
is reported). Latency is measured at the client. Stores: SQLite (WAL, synchronous=NORMAL)
and a throwaway PostgreSQL cluster with default durability (fsync, synchronous_commit and
full_page_writes on), both read back from the store and printed. After each run the
database is checked for overbookings: any window with more active bookings than ports,
a port booked twice, a station beyond its energy, or a window load that disagrees with its
bookings. A failed request or an overbooking fails the run (exit status 1).

`python -m bench.booking` prints a table and writes bench/results/booking.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import platform
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.queues import Queue
from pathlib import Path
from typing import IO, Any

from sqlalchemy import text

from bench.processes import (
    SPAWN,
    BenchFailed,
    cpu_s,
    end_all,
    fail_loudly,
    join_all,
    receive,
    spawn,
)
from bench.stores import describe, durable_cluster, store_settings
from chargenet.demo import free_port, wait_for_port
from server.db.migrate import upgrade
from server.db.models import Gateway, Port, Station, Unit
from server.db.session import Database
from tests.postgres import create_database


def sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


RESULTS = Path(__file__).resolve().parent / "results" / "booking.json"
PARTNER = "bench"
PARTNER_KEY = secrets.token_urlsafe(24)
"""A partner app's API key, new each run: every booking carries a verified identity
(`server.api.identity`), as the public API requires."""
CITY = (33.84, 132.77)
STATIONS = 200
PORTS = 16
RATED_WH = 3000.0
MAX_CONNECTIONS = 512
"""Per generator process: more requests in flight than this wait for a connection."""
WARM_CONNECTIONS = 64
"""Per server, opened before the burst so that it does not pay for TCP handshakes."""
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
    generator_cpu_pct: float
    """CPU the load generator(s) used over the run, % of one core."""
    server_cpu_pct: float
    """CPU the server process(es) used over the run, % of one core."""


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


def server(url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int, IO[bytes]]:
    """A real `chargenet server` process on a free port (no MQTT, nothing goes stale)."""
    port = free_port()
    log = (workdir / f"server-{port}.log").open("ab")
    env = {**os.environ, "CHARGENET_DATABASE_URL": url, "CHARGENET_MQTT_URL": "",
           "CHARGENET_MQTT_CLIENT_ID": f"bench-booking-{port}",  # one id per process
           "CHARGENET_REPORT_PERIOD_S": "3600",
           "CHARGENET_PARTNER_KEY_HASHES": json.dumps({PARTNER: sha256(PARTNER_KEY)}),
           "CHARGENET_BOOKING_CLIENT_REQUESTS_PER_MIN": "100000000"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "chargenet", "server", "--port", str(port)], stderr=log, env=env
    )
    return proc, port, log


def generator(ports: list[int], jobs: list[tuple[float, bytes]], start_wall: float,
              key: str, out: Queue[Any]) -> None:  # fmt: skip
    """One load-generator process: open-loop requests over keep-alive HTTP/1.1, each with
    the partner's API key."""
    import uvloop

    began = time.process_time()
    done = uvloop.run(_generate(ports, jobs, start_wall, key.encode()))
    out.put((done, time.process_time() - began))


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _exchange(conn: Conn, request: bytes) -> tuple[int, bytes]:
    reader, writer = conn
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return int(head[9:12]), (await reader.readexactly(length) if length else b"")


async def _generate(
    ports: list[int], jobs: list[tuple[float, bytes]], start_wall: float, key: bytes
) -> list[tuple[float, float, str]]:
    idle: list[list[Conn]] = [[] for _ in ports]
    slots = asyncio.Semaphore(MAX_CONNECTIONS)
    done: list[tuple[float, float, str]] = []

    async def connect(k: int) -> Conn:
        return await asyncio.open_connection("127.0.0.1", ports[k])

    async def one(at: float, k: int, body: bytes) -> None:
        request = (
            b"POST /api/v1/bookings HTTP/1.1\r\nHost: bench\r\nX-Api-Key: %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (key, len(body), body)
        )
        async with slots:
            conn = idle[k].pop() if idle[k] else await connect(k)
            try:
                try:
                    status, reply = await _exchange(conn, request)
                except (asyncio.IncompleteReadError, ConnectionError):
                    conn[1].close()  # the server closed an idle connection: once more
                    conn = await connect(k)
                    status, reply = await _exchange(conn, request)
            except Exception as exc:  # counted, never hidden
                conn[1].close()
                done.append((at, time.time() - start_wall - at, f"error:{exc!r}"[:200]))
                return
            idle[k].append(conn)
        if status == 201:
            outcome = "booked"
        elif status == 409:
            outcome = json.loads(reply)["error"]["code"]
        else:
            outcome = f"error:{status}:{reply[:200]!r}"
        done.append((at, time.time() - start_wall - at, outcome))

    for k in range(len(ports)):  # warm up: connections, the snapshot, the pool
        idle[k] = list(await asyncio.gather(*(connect(k) for _ in range(WARM_CONNECTIONS))))
        for conn in idle[k][:8]:
            await _exchange(conn, b"GET /api/v1/stations HTTP/1.1\r\nHost: bench\r\n\r\n")
    tasks = []
    delay = start_wall - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    for i, (at, body) in enumerate(jobs):
        wait = start_wall + at - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(at, i % len(ports), body)))
    await asyncio.gather(*tasks)
    for conns in idle:
        for _reader, writer in conns:
            writer.close()
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
    jobs = [
        (at, json.dumps({"resident_id": f"{PARTNER}:r{r}", "station_id": sid,
                         "window_start": (first + timedelta(minutes=30 * w)).isoformat()},
                        separators=(",", ":")).encode())
        for at, (r, sid, w) in zip(offsets, plan, strict=True)
    ]  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="chargenet-bench-servers-"))
    servers = [server(url, workdir) for _ in range(processes)]
    try:
        for _proc, port, _log in servers:
            wait_for_port("127.0.0.1", port, 60)
        ports = [port for _proc, port, _log in servers]
        server_cpu = [cpu_s(proc.pid) for proc, _port, _log in servers]
        queue: Queue[Any] = SPAWN.Queue()
        start_wall = time.time() + 4.0  # time for the generators to start and warm up
        gens = args.generators
        procs = [spawn(generator, f"load generator {k}", ports, jobs[k::gens], start_wall,
                       PARTNER_KEY, queue) for k in range(gens)]  # fmt: skip
        try:
            parts = [receive(queue, procs, 600) for _ in procs]
            join_all(procs, 60)
        finally:
            end_all(procs)
        server_cpu = [
            cpu_s(proc.pid) - c for (proc, _p, _l), c in zip(servers, server_cpu, strict=True)
        ]
    finally:
        codes = []
        for proc, _port, log in servers:
            proc.terminate()
            codes.append(proc.wait(timeout=30))
            log.close()
    if any(codes):
        raise BenchFailed(f"server processes exited with {codes} on SIGTERM (logs in {workdir})")
    done = [row for rows, _cpu in parts for row in rows]
    errors = Counter(d[2] for d in done if d[2].startswith("error"))
    for error, n in errors.most_common(5):
        print(f"  {n} x {error}", flush=True)
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
        generator_cpu_pct=round(100 * sum(c for _rows, c in parts) / total_span, 1),
        server_cpu_pct=round(100 * sum(server_cpu) / total_span, 1),
    )  # fmt: skip


def _pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.booking",
                                     description=__doc__.split("\n")[0])  # fmt: skip
    parser.add_argument("--requests", type=int, default=40_000)
    parser.add_argument("--peak", type=float, default=1_200.0, help="offered/s in minute one")
    parser.add_argument("--tail-factor", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--processes", default="1,2", help="server processes")
    parser.add_argument("--generators", type=int, default=1, help="load-generator processes")
    args = parser.parse_args(argv)
    return fail_loudly("booking", lambda: measure(args))


def measure(args: argparse.Namespace) -> int:
    """Every configuration in turn; a failed request or an overbooking fails the run."""
    print(" | ".join(HEADER), flush=True)
    results: list[Result] = []
    settings: dict[str, dict[str, str]] = {}
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
                settings[store] = store_settings(url)
                print(_row(result), flush=True)
    finally:
        if cluster is not None:
            cluster.stop()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "path": "HTTP: POST /api/v1/bookings on 1 and 2 `chargenet server` processes, "
                "open-loop keep-alive load generator in its own process(es)",
        "durability": settings, "args": vars(args), "results": [asdict(r) for r in results],
    }, indent=2) + "\n")  # fmt: skip
    for store, found in settings.items():
        print(f"{store}: {describe(found)}")
    failed = [f"{r.store} x {r.processes}: {r.errors} errors, {r.overbookings} overbooked"
              for r in results if r.errors or r.overbookings]  # fmt: skip
    if failed:
        raise BenchFailed("; ".join(failed))
    return 0


HEADER = ("store", "procs", "requests", "booked", "full", "errors", "burst s", "offered/s",
          "booked/s burst", "booked/s all", "p50 ms", "p99 ms", "p99 burst ms",
          "overbooked", "gen cpu %", "server cpu %")  # fmt: skip


def _row(r: Result) -> str:
    cells = (r.store, r.processes, r.requests, r.booked, r.full, r.errors, r.burst_s,
             r.offered_peak_per_s, r.booked_per_s_burst, r.booked_per_s_overall, r.p50_ms,
             r.p99_ms, r.p99_burst_ms, r.overbookings, r.generator_cpu_pct,
             r.server_cpu_pct)  # fmt: skip
    return " | ".join(str(c) for c in cells)


if __name__ == "__main__":
    raise SystemExit(main())
