"""Gateway soak: 10 batteries x 8 ports on two serial lines for hours of simulated time.

A Raspberry Pi-class gateway must run for days without its memory creeping up. Two
emulated RS-485 lines (ptys, 8N2, the simulator paying each frame's wire time) carry five
8-port batteries each; the simulator runs `--speed` times real time, physics on (phones
arrive, draw and leave, packs drain), with a fault timeline at simulated times (a port
fault, a hot pack, a low pack, a unit gone silent and back) on some battery every 20
simulated minutes. The gateway publishes to a real Mosquitto with its report period scaled
by the same factor (60 s / speed) and polls every 1 s / speed, which the lines cannot keep
up with: it then polls as fast as they allow, and the table says how many polls per unit
per simulated hour that made (production: 3,600). Without a server there are no receipts,
so the gateway runs with `receipts = false` (a PUBACK deletes the row).

Live phase (`--hours` simulated): the gateway's VmRSS is sampled twice a real second.
Figures: CPU-ms per simulated hour and per 1,000 registers read (the simulator counts
them); peak RSS (VmHWM); mean RSS in the first and last quarter; and the least-squares
slope of RSS over the second half in MB per simulated hour, which is ~0 when memory is
flat. Then the outage phase (`--outage-hours` simulated, broker stopped): outbox messages
and bytes (pages in use in the SQLite file) per simulated hour of outage, RSS over it, and
the drain time once the broker is back. Ratios are within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from bench.gateway import peak_rss_mb, snapshot_reads, wait
from bench.processes import BenchFailed, cpu_s, fail_loudly
from chargenet.demo import free_port
from gateway.config import RtuBus
from tests.mosquitto import Mosquitto
from tests.system.harness import Child, Recorder, Simulator, start_gateway

LINES: Final = 2
UNITS_PER_LINE: Final = 5
PORTS: Final = 8
PRODUCTION_POLL_S: Final = 1.0
PRODUCTION_REPORT_S: Final = 60.0
FAULT_EVERY_S: Final = 1200.0
"""Simulated seconds between scheduled faults (each on the next battery in turn)."""
FAULTS: Final = (
    ('kind = "port_fault"\nport = 3\nerror = "over_current"', 600),
    ('kind = "over_temp"', 900),
    ('kind = "silent"', 300),
    ('kind = "low_soc"', 600),
)
SAMPLE_S: Final = 0.5


@dataclass
class Result:
    baudrate: int
    speed: float
    sim_hours: float
    outage_sim_hours: float
    polls_per_unit_per_sim_hour: float
    production_polls_per_unit_per_hour: float
    polls_per_unit: float
    production_poll_hours: float
    """The polls each unit got, in hours of polling at the production period."""
    messages_per_sim_hour: float
    faults_fired: int
    cpu_ms_per_sim_hour: float
    cpu_ms_per_1000_registers: float
    peak_rss_mb: float
    rss_first_quarter_mb: float
    rss_last_quarter_mb: float
    rss_slope_second_half_mb_per_sim_hour: float
    rss_second_half_change_mb: float
    """The slope times the second half's length: what it grew by, fitted."""
    rss_samples: int
    outage_messages_per_hour: float
    outage_bytes_per_hour: float
    outage_bytes_per_message: float
    outage_rss_slope_mb_per_sim_hour: float
    drain_s: float


def scenario_toml(baudrate: int, speed: float, sim_s: float) -> str:
    """Two lines of five 8-port batteries and a fault every 20 simulated minutes."""
    units = ", ".join(str(u) for u in range(1, UNITS_PER_LINE + 1))
    text = f"seed = 11\nspeed = {speed}\n\n[defaults]\nports = {PORTS}\nsoc_pct = 90\n"
    text += "arrival_rate_per_h = 4.0\n"
    for n in range(1, LINES + 1):
        text += (f'\n[[line]]\nname = "line-{n}"\nbaudrate = {baudrate}\nparity = "N"\n'
                 f"stopbits = 2\nunits = [{units}]\n")  # fmt: skip
    at, turn = FAULT_EVERY_S / 2, 0
    while at < sim_s:
        spec, duration = FAULTS[turn % len(FAULTS)]
        line, unit = turn % LINES + 1, turn // LINES % UNITS_PER_LINE + 1
        text += (f'\n[[fault]]\nat_s = {at}\nduration_s = {duration}\nline = "line-{line}"\n'
                 f"unit_id = {unit}\n{spec}\n")  # fmt: skip
        at, turn = at + FAULT_EVERY_S, turn + 1
    return text


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else 0.0


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def used_bytes(store: Path) -> int:
    """Bytes of the outbox's pages in use, read beside the running gateway."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        (size,) = db.execute("PRAGMA page_size").fetchone()
        (pages,) = db.execute("PRAGMA page_count").fetchone()
        (free,) = db.execute("PRAGMA freelist_count").fetchone()
    finally:
        db.close()
    return int((pages - free) * size)


def health(port: int) -> dict[str, Any]:
    """The gateway's `/healthz` body (503 while degraded, e.g. with the broker away)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
            body: dict[str, Any] = json.loads(reply.read())
    except urllib.error.HTTPError as degraded:
        body = json.loads(degraded.read())
    return body


def totals(sim: Simulator) -> tuple[int, int]:
    """(requests answered, registers read) over every unit."""
    units = sim.units()
    return sum(u["requests"] for u in units), sum(u["registers_read"] for u in units)


class Soak:
    """The running parts and the RSS samples, (simulated hours, MB)."""

    def __init__(self, sim: Simulator, gateway: Child, speed: float) -> None:
        self.sim, self.gateway, self.speed = sim, gateway, speed

    def sample(self, real_s: float) -> list[tuple[float, float]]:
        """RSS every `SAMPLE_S` for `real_s`, failing as soon as a part dies."""
        samples: list[tuple[float, float]] = []
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < real_s:
            if not (self.gateway.alive and self.sim.alive):
                raise BenchFailed(f"gateway or simulator died; logs in {self.gateway.log_path}")
            samples.append((elapsed * self.speed / 3600, rss_mb(self.gateway.process.pid)))
            time.sleep(SAMPLE_S)  # the sampling period, not a synchronisation
        return samples


def run(args: argparse.Namespace, workdir: Path) -> Result:
    workdir.mkdir(parents=True, exist_ok=True)
    speed, live_s = args.speed, args.hours * 3600 / args.speed
    outage_s = args.outage_hours * 3600 / speed
    scenario = workdir / "soak.toml"
    scenario.write_text(scenario_toml(args.baud, speed, (args.hours + 1) * 3600))
    broker = Mosquitto(workdir)
    broker.start()
    sim = Simulator(["--scenario", str(scenario)], workdir)
    health_port = free_port()
    gateway = start_gateway(
        workdir, sim, broker.url, report_period_s=PRODUCTION_REPORT_S / speed,
        poll_period_s=PRODUCTION_POLL_S / speed, top=f'health_listen = "127.0.0.1:{health_port}"',
        extra="\nreceipts = false",
    )  # fmt: skip
    recorder = Recorder(broker.port, client_id="soak-recorder")
    soak = Soak(sim, gateway, speed)
    try:
        expected = LINES * UNITS_PER_LINE
        wait(lambda: sum(u["requests"] > 20 for u in sim.units()) == expected, 60,
             "discovery and polling of every unit")  # fmt: skip
        requests0, registers0 = totals(sim)
        cpu0, messages0 = cpu_s(gateway.process.pid), len(recorder.messages())
        live = soak.sample(live_s)
        requests1, registers1 = totals(sim)
        cpu = cpu_s(gateway.process.pid) - cpu0
        messages = len(recorder.messages()) - messages0
        fired = sim.log_text().count("injected ")
        sim_hours = live[-1][0]
        quarter = max(1, len(live) // 4)
        polls = (requests1 - requests0) / requests_per_poll(sim) / expected

        broker.stop()
        wait(lambda: not health(health_port)["mqtt_connected"], 30, "the gateway to notice")
        store = workdir / "outbox.db"
        bytes0, backlog0 = used_bytes(store), health(health_port)["outbox"]["messages"]
        outage = soak.sample(outage_s)
        bytes1, backlog1 = used_bytes(store), health(health_port)["outbox"]["messages"]
        outage_hours = outage[-1][0]
        broker.start()
        back = time.monotonic()
        wait(lambda: health(health_port)["outbox"]["messages"] == 0, 120, "the backlog drained")
        drain_s = time.monotonic() - back
        stored = backlog1 - backlog0
        result = Result(
            baudrate=args.baud,
            speed=speed,
            sim_hours=sim_hours,
            outage_sim_hours=outage_hours,
            polls_per_unit_per_sim_hour=polls / sim_hours,
            production_polls_per_unit_per_hour=3600 / PRODUCTION_POLL_S,
            polls_per_unit=polls,
            production_poll_hours=polls * PRODUCTION_POLL_S / 3600,
            messages_per_sim_hour=messages / sim_hours,
            faults_fired=fired,
            cpu_ms_per_sim_hour=cpu * 1000 / sim_hours,
            cpu_ms_per_1000_registers=cpu * 1000 / ((registers1 - registers0) / 1000),
            peak_rss_mb=peak_rss_mb(gateway.process.pid),
            rss_first_quarter_mb=mean([mb for _, mb in live[:quarter]]),
            rss_last_quarter_mb=mean([mb for _, mb in live[-quarter:]]),
            rss_slope_second_half_mb_per_sim_hour=slope(live[len(live) // 2 :]),
            rss_second_half_change_mb=slope(live[len(live) // 2 :]) * sim_hours / 2,
            rss_samples=len(live),
            outage_messages_per_hour=stored / outage_hours,
            outage_bytes_per_hour=(bytes1 - bytes0) / outage_hours,
            outage_bytes_per_message=(bytes1 - bytes0) / stored if stored else 0.0,
            outage_rss_slope_mb_per_sim_hour=slope(outage),
            drain_s=drain_s,
        )
    finally:
        recorder.close()
        codes = {"gateway": gateway.stop(), "simulator": sim.stop()}
        broker.stop()
    if any(codes.values()):
        raise BenchFailed(f"exit codes on SIGTERM {codes}; logs in {workdir}")
    return result


def requests_per_poll(sim: Simulator) -> float:
    """Requests a poll of one unit takes: its reads of registers over registers a poll reads.

    The simulator counts requests and registers; discovery's few requests are noise over
    a run of thousands of polls."""
    line = sim.announced["serial"]["line-1"]
    bus = RtuBus(kind="rtu", name="line-1", port="-", baudrate=line["baudrate"], parity="N",
                 stopbits=2, units=[1])  # fmt: skip
    return float(len(snapshot_reads(bus, PORTS)[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gateway_soak", description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--speed", type=float, default=120.0,
                        help="simulated seconds per real second (max 10000)")  # fmt: skip
    parser.add_argument("--hours", type=float, default=1.0, help="simulated hours, live")
    parser.add_argument("--outage-hours", type=float, default=0.5,
                        help="simulated hours with the broker down")  # fmt: skip
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run of about 20 s: 0.25 h live, 0.1 h outage")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("bench/results/gateway_soak.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.hours, args.outage_hours = 0.25, 0.1
    return fail_loudly("gateway_soak", lambda: run_all(args))


def run_all(args: argparse.Namespace) -> int:
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"chargenet-soak-{os.getpid()}"
    r = run(args, workdir)
    rows = [
        ("simulated hours live / outage", f"{r.sim_hours:.2f} / {r.outage_sim_hours:.2f}"),
        ("speed, baud", f"{r.speed:.0f}x, {r.baudrate} 8N2"),
        ("polls/unit/sim-hour (production 3600)", f"{r.polls_per_unit_per_sim_hour:.0f}"),
        ("polls/unit = hours at production 1 s", f"{r.polls_per_unit:.0f} = "
                                                 f"{r.production_poll_hours:.2f} h"),
        ("messages/sim-hour", f"{r.messages_per_sim_hour:.0f}"),
        ("faults fired", f"{r.faults_fired}"),
        ("CPU-ms/sim-hour", f"{r.cpu_ms_per_sim_hour:.0f}"),
        ("CPU-ms/1k registers", f"{r.cpu_ms_per_1000_registers:.1f}"),
        ("peak RSS MB (VmHWM)", f"{r.peak_rss_mb:.1f}"),
        ("RSS MB first / last quarter", f"{r.rss_first_quarter_mb:.1f} / "
                                        f"{r.rss_last_quarter_mb:.1f}"),
        ("RSS slope 2nd half MB/sim-hour", f"{r.rss_slope_second_half_mb_per_sim_hour:+.3f}"),
        ("RSS change over 2nd half MB (fitted)", f"{r.rss_second_half_change_mb:+.2f}"),
        ("outage: messages/hour", f"{r.outage_messages_per_hour:.0f}"),
        ("outage: outbox bytes/hour", f"{r.outage_bytes_per_hour:.0f}"),
        ("outage: bytes/message", f"{r.outage_bytes_per_message:.0f}"),
        ("outage: RSS slope MB/sim-hour", f"{r.outage_rss_slope_mb_per_sim_hour:+.3f}"),
        ("drain after outage s", f"{r.drain_s:.1f}"),
    ]  # fmt: skip
    for name, value in rows:
        print(f"{name:<40} | {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version()}
    args.out.write_text(json.dumps({"machine": machine, "result": asdict(r)}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
