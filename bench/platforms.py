"""Platforms benchmark: how soon crews and residents hear of a fault, and a burst of chats.

Real parts, each its own process: Mosquitto, the simulator (one 8-port battery on an
emulated RS-485 line at 115200 baud, no physics), the gateway polling every `--poll`
seconds, `chargenet server` and the sandbox standing in for LINE and LINE WORKS; per store
(`--stores`): SQLite (WAL) and a throwaway PostgreSQL cluster with default durability,
both read back and printed.

1. Fault -> crew alert: a port fault injected through the simulator's control API, to the
   alert's arrival at the LINE WORKS sandbox (its own receive time) in the station's crew
   channel; p50/p99 against the gateway's poll interval (goal: p99 <= poll + 250 ms). The
   fault waits up to one poll for the gateway to see it, so the floor is about the interval.
2. Fault -> rebooking push: the same faults, each at a port booked (through the API) by a
   LINE resident, to the push telling them of the moved booking at the LINE sandbox
   (goal: p99 <= 2 s).
3. A burst of resident conversations: `--residents` residents at once each send 充電, a
   location and the book postback as correctly signed webhooks, and a share of them
   (`--redeliver`) is sent twice, the second time as LINE's redelivery, open-loop at
   `--rate` events/s (goal at 500/s: acknowledgement p99 <= 50 ms, 100 % of replies sent
   while their reply token is fresh, 0 lost: every event answered once, no redelivery
   answered again). The webhooks go to `chargenet intake` in front of the server, as
   deployed (`--front intake`), or to the server's own webhook (`--front server`).

Figures are from one run, on a shared machine. `--quick` is a short smoke run (the tests
use it). `python -m bench.platforms` prints a table and writes bench/results/platforms.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any, Final

import httpx

from bench.booking import Conn, _exchange
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
from sandbox.line import webhooks
from server.line.messages import Postback, postback_data
from tests.mosquitto import Mosquitto
from tests.postgres import create_database
from tests.sandboxes import NOWHERE, Sandbox
from tests.server.running import IntakeProcess, ServerProcess
from tests.system.harness import Simulator, start_gateway
from tests.system.platforms import CHANNELS, GW, NEAR, STATION, alerts, start_server

RESULTS: Final = Path(__file__).resolve().parent / "results" / "platforms.json"
PORTS: Final = 8
LINE: Final = "line-1"
UNIT: Final = f"{LINE}.1"
CREW_CHANNEL: Final = CHANNELS[("municipality", STATION["municipality"])]
BURST_USERS: Final = 1 << 120
"""The burst's residents' LINE user ids start here (the fault cycles' start at 0)."""
DESTINATION: Final = "U" + "b" * 32
"""The official account's id in the burst's webhooks (the server does not read it)."""
WARM_CONNECTIONS: Final = 64
"""Keep-alive connections the generator opens before the burst."""
ISSUED_TOKEN_TTL_S: Final = 3600.0
"""The burst's reply tokens are issued before it (the sandbox issues about 50 a second on a
busy machine), so the sandbox keeps them longer; freshness is judged against
`REPLY_FRESH_S` from each event's sending instead."""
REPLY_FRESH_S: Final = 60.0
"""A reply counts as in time when it came through the reply endpoint within a minute of
its event (LINE's reply tokens are short-lived; the server replies until
`line_reply_within_s`, 50 s, after receipt, and pushes after that)."""
ANSWER_WAIT_S: Final = 60.0
SETTLE_S: Final = 2.0
ANSWERS_POLL_S: Final = 3.0
"""Every delivery is read at each look (megabytes after a burst): rarely, so as not to load
the sandbox while it still takes answers (their times are its own, not the look's)."""
"""After the last webhook, how long answers may take before the missing ones count lost."""


@dataclass
class Latencies:
    """One figure's samples (ms) and its summary."""

    samples_ms: list[float]

    @property
    def p50_ms(self) -> float:
        return round(statistics.median(self.samples_ms), 1)

    @property
    def p99_ms(self) -> float:
        return round(percentile(self.samples_ms, 0.99), 1)


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile: with fewer than 100 samples, p99 is the worst."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def received_at(stamp: str) -> float:
    """A sandbox's receive time (ISO 8601, `Z`) as epoch seconds, comparable to time.time()."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def wait(condition: Any, timeout_s: float, what: str) -> Any:
    """Poll until truthy; a part that never gets there fails the run, it measured nothing."""
    deadline = time.monotonic() + timeout_s
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise BenchFailed(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.02)  # receive times come from the sandbox: polling adds no error
    return found


class FaultRig:
    """Simulator, gateway, server and sandbox for the fault figures, with a booking per
    cycle so that the fault moves a LINE resident."""

    def __init__(
        self, workdir: Path, broker: Mosquitto, sandbox: Sandbox, poll_s: float, database_url: str
    ) -> None:
        self.sandbox = sandbox
        self.sim = Simulator(
            ["--serial-lines", "1", "--units-per-line", "1", "--ports", str(PORTS),
             "--baudrate", "115200", "--no-physics", "--seed", "1"], workdir,
        )  # fmt: skip
        try:
            self.server = start_server(workdir, broker.url, sandbox, units=(UNIT,),
                                       database_url=database_url)  # fmt: skip
        except Exception:
            self.sim.stop()
            raise
        self.gateway = start_gateway(workdir, self.sim, broker.url, gw_id=GW, poll_period_s=poll_s)
        try:
            wait(lambda: self.port_statuses().count("available") == PORTS, 60,
                 "the battery's ports available in the API")  # fmt: skip
        except Exception:
            self.stop()
            raise

    def port_statuses(self) -> list[str]:
        detail = self.server.get(f"/api/v1/stations/{STATION['id']}")
        return [p["status"] for b in detail["batteries"] for p in b["ports"]]

    def port_status(self, port: int) -> str:
        detail = self.server.get(f"/api/v1/stations/{STATION['id']}")
        found = [p["status"] for b in detail["batteries"] for p in b["ports"] if p["port"] == port]
        return str(found[0])

    def book(self, user_id: str) -> dict[str, Any]:
        windows = self.server.get(f"/api/v1/stations/{STATION['id']}/windows")["windows"]
        first = next(w for w in windows if w["places"] >= 2)  # room to move within it
        booking: dict[str, Any] = self.server.request("POST", "/api/v1/bookings", {
            "resident_id": f"line:{user_id}", "station_id": STATION["id"],
            "window_start": first["start"],
        }, admin=True)  # fmt: skip
        return booking

    def cycle(self, n: int) -> tuple[float, float]:
        """One fault at a freshly booked port: (to the crew alert, to the resident's push)
        in ms; then the fault is cleared and its incident resolved with the battery's alarms
        reset (it latches port faults), ready for the next."""
        user_id = f"U{n:032x}"
        port = self.book(user_id)["port"]
        paged = len(alerts(self.sandbox, CREW_CHANNEL))
        faulted_at = time.time()
        self.sim.inject(LINE, 1, "port_fault", port=port, error="over_current")
        alert = wait(lambda: alerts(self.sandbox, CREW_CHANNEL)[paged:], 30, f"alert {n}")[0]
        push = wait(lambda: self.sandbox.line_messages(user_id), 30, f"the push to resident {n}")
        self.sim.clear(LINE, 1, "port_fault", port=port)
        for incident in self.server.admin("GET", "/api/v1/incidents")["incidents"]:
            if incident["state"] != "resolved":  # the battery latches the fault: reset it
                reset = {"reset_alarms": incident["kind"] == "port_fault"}
                self.server.admin("POST", f"/api/v1/incidents/{incident['id']}/resolve", reset)
        wait(lambda: self.port_status(port) == "available", 30, f"port {port} available again")
        return ((received_at(alert["at"]) - faulted_at) * 1000,
                (received_at(push[0]["at"]) - faulted_at) * 1000)  # fmt: skip

    def measure(self, cycles: int) -> tuple[Latencies, Latencies]:
        """Figures 1 and 2 over `cycles` faults, after one for warming up (the first token,
        connections and queries)."""
        self.cycle(0)
        samples = [self.cycle(n) for n in range(1, cycles + 1)]
        return Latencies([a for a, _ in samples]), Latencies([p for _, p in samples])

    def stop(self) -> dict[str, int]:
        return {"gateway": self.gateway.stop(), "server": self.server.stop(),
                "simulator": self.sim.stop()}  # fmt: skip


@dataclass(frozen=True)
class Webhook:
    """One request of the burst: when (s after the start), its event, whose, and when the
    event happened (a redelivery carries its original's time)."""

    at: float
    event: dict[str, Any]
    user_id: str
    happened_at: float
    redelivery: bool


def conversation(window: str) -> list[dict[str, Any]]:
    """What each resident does: asks to charge, shares a location, books a window."""
    return [
        {"type": "text", "text": "充電"},
        {"type": "location", "latitude": NEAR[0], "longitude": NEAR[1], "title": "現在地"},
        {"type": "postback", "data": postback_data(Postback.BOOK, s=STATION["id"], w=window)},
    ]


async def issue_events(sandbox_url: str, chats: dict[str, list[dict[str, Any]]],
                       in_flight: int = 16) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """Each resident's actions through the sandbox's chat, which issues every event's id
    and reply token (and posts it nowhere: its webhook points at a closed port meanwhile);
    per resident, the events as the sandbox built them, in order."""
    slots = asyncio.Semaphore(in_flight)
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as client:

        async def one(user_id: str, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
            async with slots:
                for action in actions:
                    sent = await client.post(f"/_sandbox/line/users/{user_id}/send", json=action)
                    sent.raise_for_status()
                found = await client.get(f"/_sandbox/line/users/{user_id}/events")
                events: list[dict[str, Any]] = found.raise_for_status().json()
                return events

        issued = await asyncio.gather(*(one(u, a) for u, a in chats.items()))
    return dict(zip(chats, issued, strict=True))


def schedule(
    events: dict[str, list[dict[str, Any]]], rate: float, gap_s: float, redeliver: float,
    seed: int,
) -> list[Webhook]:  # fmt: skip
    """Open-loop arrivals at `rate`/s: residents start one after another (Poisson), each
    sending their events `gap_s` apart; a `redeliver` share of events comes again 0.5 s
    later as LINE's redelivery (the same event id, reply token and timestamp)."""
    rng = random.Random(seed)
    per_resident = sum(len(e) for e in events.values()) / len(events) * (1 + redeliver)
    starts, t = [], 0.0
    for _ in events:
        t += rng.expovariate(rate / per_resident)
        starts.append(t)
    out = []
    for start, (user_id, mine) in zip(starts, events.items(), strict=True):
        for k, event in enumerate(mine):
            at = start + k * gap_s
            out.append(Webhook(at, event, user_id, at, False))
            if rng.random() < redeliver:
                out.append(Webhook(at + 0.5, webhooks.redelivered(event), user_id, at, True))
    return sorted(out, key=lambda w: w.at)


Job = tuple[float, dict[str, Any], float]
"""(when to send, the event, when it happened), in s from the start."""


def generator(port: int, jobs: list[Job], secret: str, out: Queue[Any]) -> None:
    """The load generator's process: each webhook at its time over keep-alive HTTP/1.1,
    timed from its connections being open; puts (start, [(at, acknowledgement s, status)],
    CPU seconds)."""
    import uvloop

    began = time.process_time()
    start_wall, done = uvloop.run(_post_all(port, jobs, secret))
    out.put((start_wall, done, time.process_time() - began))


async def _post_all(
    port: int, jobs: list[Job], secret: str
) -> tuple[float, list[tuple[float, float, int]]]:
    idle: list[Conn] = []
    done: list[tuple[float, float, int]] = []

    async def connect() -> Conn:
        return await asyncio.open_connection("127.0.0.1", port)

    async def one(at: float, request: bytes) -> None:
        conn = idle.pop() if idle else await connect()
        try:
            status, _ = await _exchange(conn, request)
        except (asyncio.IncompleteReadError, ConnectionError):
            conn[1].close()
            status = 0
        else:
            idle.append(conn)
        done.append((at, time.time() - start_wall - at, status))  # from its scheduled time

    idle = list(await asyncio.gather(*(connect() for _ in range(WARM_CONNECTIONS))))
    start_wall = time.time() + 0.2
    tasks = []
    for at, event, happened_at in jobs:
        stamped = {**event, "timestamp": int((start_wall + happened_at) * 1000)}
        body = webhooks.payload(DESTINATION, [stamped])
        head = (b"POST /line/webhook HTTP/1.1\r\nHost: bench\r\nUser-Agent: LineBotWebhook/2.0\r\n"
                b"Content-Type: application/json; charset=utf-8\r\nX-Line-Signature: %s\r\n"
                b"Content-Length: %d\r\n\r\n")  # fmt: skip
        request = head % (webhooks.signature(secret, body).encode(), len(body)) + body
        wait_s = start_wall + at - time.time()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        tasks.append(asyncio.create_task(one(at, request)))
    await asyncio.gather(*tasks)
    for _reader, writer in idle:
        writer.close()
    return start_wall, done


@dataclass
class Burst:
    offered_per_s: float
    peak_per_s: int
    """Webhooks sent in the busiest second (the plateau between residents' ramp-up and
    ramp-down, where the offered rate holds)."""
    residents: int
    events: int
    redeliveries: int
    seconds: float
    acked: int
    ack_p50_ms: float
    ack_p99_ms: float
    answered: int
    in_time: int
    in_time_pct: float
    lost: int
    doubled: int
    answer_p50_ms: float
    answer_p99_ms: float
    generator_cpu_pct: float
    server_cpu_pct: float
    sandbox_cpu_pct: float
    """The sandbox validates every reply with line-bot-sdk's models: near 100 %, it is the
    bottleneck of the answers' delay, not the server."""
    front: str
    """Who answered the webhooks: `intake` (`chargenet intake`, handing on to the server)
    or `server` (the server's own webhook)."""
    intake_cpu_pct: float


def busiest_second(times: list[float]) -> int:
    """The most of `times` (s) within any one second."""
    ordered, most, first = sorted(times), 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def answers(
    sandbox: Sandbox, expected: dict[str, int], deadline: float
) -> dict[str, list[dict[str, Any]]]:
    """Each resident's deliveries once all expected arrived (and `SETTLE_S` passed with no
    more, so a doubled answer is counted), or at the deadline (what is missing is lost)."""
    settled_at = None
    while True:
        got: dict[str, list[dict[str, Any]]] = {u: [] for u in expected}
        for delivery in sandbox.line_deliveries():
            for user in delivery["to"]:
                if user in got:
                    got[user].append(delivery)
        if all(len(got[u]) >= n for u, n in expected.items()):
            settled_at = settled_at or time.time() + SETTLE_S
        if time.time() > min(deadline, settled_at or deadline):
            return got
        time.sleep(ANSWERS_POLL_S)


def measure_burst(
    workdir: Path, sandbox: Sandbox, server: ServerProcess, args: argparse.Namespace
) -> Burst:
    """The burst of conversations (module docstring, figure 3), sent to `args.front`."""
    windows = [w["start"] for w in server.get(f"/api/v1/stations/{STATION['id']}/windows")
               ["windows"]]  # fmt: skip
    chats = {f"U{BURST_USERS + i:032x}": conversation(windows[i % len(windows)])
             for i in range(args.residents)}  # fmt: skip
    sandbox.set_urls(line_webhook_url=NOWHERE)  # a refused connection: the events go nowhere
    try:
        events = asyncio.run(issue_events(sandbox.url, chats))
    finally:
        sandbox.point_at(server.url)
    hooks = schedule(events, args.rate, args.gap, args.redeliver, args.seed)
    intake = (IntakeProcess(workdir, server.url, sandbox.line_channel_secret)
              if args.front == "intake" else None)  # fmt: skip
    try:
        results: Queue[Any] = SPAWN.Queue()
        server_cpu, cpu_from = cpu_s(server.process.pid), time.time()
        sandbox_cpu = cpu_s(sandbox.process.pid)
        intake_cpu = cpu_s(intake.process.pid) if intake else 0.0
        jobs = [(h.at, h.event, h.happened_at) for h in hooks]
        child = spawn(generator, "webhook generator", intake.port if intake else server.port,
                      jobs, sandbox.line_channel_secret, results)  # fmt: skip
        try:
            start_wall, done, generator_cpu = receive(results, [child], hooks[-1].at + 120)
            join_all([child], 30)
        finally:
            end_all([child])
        expected = {user: len(mine) for user, mine in events.items()}
        got = answers(sandbox, expected, start_wall + hooks[-1].at + ANSWER_WAIT_S)
        span = max(at + ack for at, ack, _ in done)
        server_cpu = cpu_s(server.process.pid) - server_cpu
        sandbox_cpu = cpu_s(sandbox.process.pid) - sandbox_cpu
        intake_cpu = cpu_s(intake.process.pid) - intake_cpu if intake else 0.0
    finally:
        if intake is not None and intake.stop() != 0:
            raise BenchFailed(f"the intake did not stop cleanly; its log: {intake.log_path}")
    sent_at = {u: [start_wall + h.at for h in hooks if h.user_id == u and not h.redelivery]
               for u in expected}  # fmt: skip
    delays = [(received_at(d["at"]) - sent_at[u][k]) * 1000
              for u, mine in got.items() for k, d in enumerate(mine[: expected[u]])]  # fmt: skip
    acks = [ack * 1000 for _, ack, status in done if status == 200]
    in_time = sum(
        1 for u, mine in got.items() for k, d in enumerate(mine[: expected[u]])
        if d["via"] == "reply" and received_at(d["at"]) - sent_at[u][k] <= REPLY_FRESH_S
    )  # fmt: skip
    total = sum(expected.values())
    answered = sum(min(len(got[u]), n) for u, n in expected.items())
    return Burst(
        offered_per_s=args.rate, peak_per_s=busiest_second([at for at, _, _ in done]),
        residents=len(events), events=total,
        redeliveries=sum(1 for h in hooks if h.redelivery), seconds=round(span, 2),
        acked=len(acks), ack_p50_ms=round(statistics.median(acks), 1),
        ack_p99_ms=round(percentile(acks, 0.99), 1), answered=answered, in_time=in_time,
        in_time_pct=round(100 * in_time / total, 2), lost=total - answered,
        doubled=sum(max(0, len(got[u]) - n) for u, n in expected.items()),
        answer_p50_ms=round(statistics.median(delays), 1) if delays else 0.0,
        answer_p99_ms=round(percentile(delays, 0.99), 1) if delays else 0.0,
        generator_cpu_pct=round(100 * generator_cpu / span, 1),
        server_cpu_pct=round(100 * server_cpu / (time.time() - cpu_from), 1),
        sandbox_cpu_pct=round(100 * sandbox_cpu / (time.time() - cpu_from), 1),
        front=args.front, intake_cpu_pct=round(100 * intake_cpu / (time.time() - cpu_from), 1),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.platforms", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--poll", type=float, default=1.0, help="the gateway's poll period (s)")
    parser.add_argument("--faults", type=int, default=40, help="fault cycles (figures 1, 2)")
    parser.add_argument("--rate", type=float, default=500.0, help="burst events/s offered")
    parser.add_argument("--residents", type=int, default=1000, help="residents in the burst")
    parser.add_argument("--gap", type=float, default=1.0, help="s between a resident's events")
    parser.add_argument("--redeliver", type=float, default=0.25,
                        help="share of events sent again as a redelivery")  # fmt: skip
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--front", choices=("intake", "server"), default="intake",
                        help="where the burst's webhooks go: `chargenet intake` in front of "
                        "the server (as deployed), or the server's own webhook")  # fmt: skip
    parser.add_argument("--stores", help="sqlite,postgresql (PostgreSQL with default "
                        "durability); --quick: sqlite unless given")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 3 faults, 30 residents at 100/s")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.faults, args.residents, args.rate, args.gap = 3, 30, 100.0, 0.5
    args.stores = args.stores or ("sqlite" if args.quick else "sqlite,postgresql")
    return fail_loudly("platforms", lambda: run_all(args))


@dataclass
class StoreRun:
    store: str
    durability: dict[str, str]
    alert: Latencies
    push: Latencies
    burst: Burst


def run_store(store: str, url: str, args: argparse.Namespace) -> StoreRun:
    """Every part started afresh on one store, the three figures measured, all stopped."""
    workdir = Path(tempfile.mkdtemp(prefix=f"chargenet-bench-platforms-{store}-"))
    broker = Mosquitto(workdir)
    broker.start()
    codes: dict[str, int] = {}
    sandbox = Sandbox(workdir / "sandbox", reply_token_ttl_s=ISSUED_TOKEN_TTL_S)
    try:
        rig = FaultRig(workdir, broker, sandbox, args.poll, url)
        try:
            alert, push = rig.measure(args.faults)
            burst = measure_burst(workdir, sandbox, rig.server, args)
        finally:
            codes |= rig.stop()
    finally:
        codes["sandbox"] = sandbox.stop()
        broker.stop()
    if any(codes.values()):
        raise BenchFailed(f"exit codes on SIGTERM {codes}; logs in {workdir}")
    return StoreRun(store, store_settings(url), alert, push, burst)


def run_all(args: argparse.Namespace) -> int:
    runs, cluster = [], None
    try:
        for store in args.stores.split(","):
            if store == "sqlite":
                scratch = tempfile.mkdtemp(prefix="chargenet-bench-")
                url = f"sqlite+aiosqlite:///{scratch}/bench.sqlite3"
            else:
                cluster = cluster or durable_cluster()
                url = create_database(cluster.url)
            runs.append(run_store(store, url, args))
            report(runs[-1], args)
    finally:
        if cluster is not None:
            cluster.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]},
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "results": {r.store: {
            "durability": r.durability,
            "fault_to_alert": {"p50_ms": r.alert.p50_ms, "p99_ms": r.alert.p99_ms,
                               "goal_p99_ms": args.poll * 1000 + 250,
                               "samples_ms": r.alert.samples_ms},
            "fault_to_push": {"p50_ms": r.push.p50_ms, "p99_ms": r.push.p99_ms,
                              "goal_p99_ms": 2000, "samples_ms": r.push.samples_ms},
            "burst": asdict(r.burst),
        } for r in runs},
    }, indent=2) + "\n")  # fmt: skip
    print(f"wrote {args.out}")
    for r in runs:
        refused = r.burst.events + r.burst.redeliveries - r.burst.acked
        if r.burst.lost or r.burst.doubled or refused:
            raise BenchFailed(f"{r.store}: {r.burst.lost} answers lost, {r.burst.doubled} "
                              f"doubled, {refused} webhooks not answered 200")  # fmt: skip
    return 0


def report(run: StoreRun, args: argparse.Namespace) -> None:
    print(f"{run.store} ({describe(run.durability)}), load average (1, 5, 15 min) "
          + ", ".join(f"{x:.1f}" for x in os.getloadavg()))  # fmt: skip
    print(f"  fault -> crew alert (LINE WORKS), {len(run.alert.samples_ms)} faults, poll "
          f"{args.poll:g} s: p50 {run.alert.p50_ms} ms, p99 {run.alert.p99_ms} ms "
          f"(goal p99 <= {args.poll * 1000 + 250:.0f} ms)")  # fmt: skip
    print(f"  fault -> rebooking push (LINE): p50 {run.push.p50_ms} ms, p99 {run.push.p99_ms} "
          f"ms (goal p99 <= 2000 ms)")  # fmt: skip
    print("  " + " | ".join(BURST_HEADER))
    print("  " + " | ".join(str(v) for v in asdict(run.burst).values()), flush=True)


BURST_HEADER = ("offered/s", "busiest s", "residents", "events", "redeliveries", "s", "acked (200)",
                "ack p50 ms", "ack p99 ms", "answered", "replies in time", "in time %",
                "lost", "doubled", "answer p50 ms", "answer p99 ms", "gen cpu %",
                "server cpu %", "sandbox cpu %", "front", "intake cpu %")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
