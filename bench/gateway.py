"""Gateway benchmark: how close to the wire's limit it polls, at what CPU and memory cost.

Three simulated batteries of four ports on one emulated RS-485 line (8N2, 11-bit
characters), at 19200 and 115200 baud, polled as fast as the line allows (poll period 0).
The simulator counts the requests it answers, so the rates are measured from the device
side of the wire, independently of the gateway's own counters.

Figures are ratios within one run:
- snapshots per minute per battery over the wire's limit for reading the same registers
  in the same requests (request + response bytes and two t3.5 gaps each);
- with one battery silent, its neighbours' rate over their rate with all three answering,
  and over the wire's limit for the two of them;
- gateway CPU-ms per 1,000 registers read; gateway peak resident memory (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.processes import BenchFailed, cpu_s, fail_loudly
from gateway.config import RtuBus
from gateway.discovery import ModelSpan, plan_reads
from gateway.modbus_link import read_wire_time_s
from protocol.sunspec import BATTERY, DC_MEASUREMENT, HEADER_LEN, SUNS_BASE
from protocol.vendor_model import VENDOR
from tests.mosquitto import Mosquitto
from tests.system.harness import Child, Simulator, start_gateway

PORTS = 4
UNITS = (1, 2, 3)
LINE = "line-1"


@dataclass
class Result:
    baudrate: int
    window_s: float
    snapshots_per_min: float
    wire_limit_per_min: float
    wire_ratio: float
    silent_neighbour_per_min: float
    silent_over_healthy: float
    silent_wire_ratio: float
    cpu_ms_per_1000_registers: float
    peak_rss_mb: float


def snapshot_reads(bus: RtuBus, ports: int = PORTS) -> tuple[float, tuple[tuple[int, int], ...]]:
    """Least wire time of one poll of a battery of `ports` ports, and the reads it takes."""
    at = SUNS_BASE + 2 + HEADER_LEN + 66  # after the SunS marker and model 1
    spans = []
    for model, repeats in ((BATTERY, 0), (DC_MEASUREMENT, ports), (VENDOR, ports)):
        spans.append(ModelSpan(model.model_id, at, model.length(repeats)))
        at = spans[-1].end
    reads = plan_reads(spans)
    return sum(read_wire_time_s(bus, n) for _, n in reads), reads


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def counts(sim: Simulator) -> dict[int, tuple[int, int]]:
    """(requests answered, registers read) per unit."""
    return {
        u["unit_id"]: (u["requests"], u["registers_read"]) for u in sim.units() if u["line"] == LINE
    }


def wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise BenchFailed(f"timed out waiting for {what}")
        time.sleep(0.05)


def measure(sim: Simulator, gateway: Child, window_s: float) -> tuple[dict[int, float], float, int]:
    """Requests/s per unit, gateway CPU seconds and registers read during one window."""
    before, cpu_before, started = counts(sim), cpu_s(gateway.process.pid), time.monotonic()
    wait(lambda: time.monotonic() - started >= window_s, window_s + 5, "the window")
    after, cpu_after, elapsed = counts(sim), cpu_s(gateway.process.pid), time.monotonic() - started
    rates = {u: (after[u][0] - before[u][0]) / elapsed for u in after}
    registers = sum(after[u][1] - before[u][1] for u in after)
    return rates, cpu_after - cpu_before, registers


def run_one(baudrate: int, window_s: float, workdir: Path) -> Result:
    workdir.mkdir(parents=True, exist_ok=True)
    broker = Mosquitto(workdir)
    broker.start()
    sim = Simulator(
        ["--serial-lines", "1", "--units-per-line", str(len(UNITS)), "--ports", str(PORTS),
         "--baudrate", str(baudrate), "--parity", "N", "--stopbits", "2", "--no-physics"],
        workdir,
    )  # fmt: skip
    gateway = start_gateway(workdir, sim, broker.url, report_period_s=60, poll_period_s=0.0)
    try:
        bus = RtuBus(kind="rtu", name=LINE, port="-", baudrate=baudrate, parity="N",
                     stopbits=2, units=list(UNITS))  # fmt: skip
        snapshot_s, reads = snapshot_reads(bus)
        reads_per_snapshot = len(reads)
        wait(lambda: all(c[0] > 20 for c in counts(sim).values()), 30, "discovery and polling")
        healthy, cpu, registers = measure(sim, gateway, window_s)
        per_min = {u: r / reads_per_snapshot * 60 for u, r in healthy.items()}
        limit_per_min = 60 / (snapshot_s * len(UNITS))
        sim.inject(LINE, 2, "silent")
        wait(lambda: "unit line-1.2 lost" in gateway.log_text(), 30, "unit 2 declared lost")
        silent, _, _ = measure(sim, gateway, window_s)
        neighbours = [silent[u] / reads_per_snapshot * 60 for u in (1, 3)]
        healthy_neighbours = [per_min[u] for u in (1, 3)]
        result = Result(
            baudrate=baudrate,
            window_s=window_s,
            snapshots_per_min=sum(per_min.values()) / len(per_min),
            wire_limit_per_min=limit_per_min,
            wire_ratio=min(per_min.values()) / limit_per_min,
            silent_neighbour_per_min=sum(neighbours) / 2,
            silent_over_healthy=min(
                n / h for n, h in zip(neighbours, healthy_neighbours, strict=True)
            ),
            silent_wire_ratio=min(neighbours) / (60 / (snapshot_s * 2)),
            cpu_ms_per_1000_registers=cpu * 1000 / (registers / 1000),
            peak_rss_mb=peak_rss_mb(gateway.process.pid),
        )
    finally:
        codes = {"gateway": gateway.stop(), "simulator": sim.stop()}
        broker.stop()
    if any(codes.values()):
        raise BenchFailed(f"exit codes on SIGTERM {codes}; logs in {workdir}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gateway", description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--window", type=float, default=20.0, help="seconds per measurement")
    parser.add_argument("--baud", type=int, nargs="+", default=[19200, 115200])
    parser.add_argument("--out", type=Path, default=Path("bench/results/gateway.json"))
    args = parser.parse_args(argv)
    return fail_loudly("gateway", lambda: run_all(args))


def run_all(args: argparse.Namespace) -> int:
    workroot = Path(os.environ.get("TMPDIR", "/tmp")) / f"chargenet-bench-{os.getpid()}"
    results = [run_one(b, args.window, workroot / str(b)) for b in args.baud]
    header = ("baud", "snap/min/batt", "wire limit", "ratio", "silent: neighb/min",
              "vs healthy", "vs wire", "CPU-ms/1k reg", "peak RSS MB")  # fmt: skip
    print(" | ".join(header))
    for r in results:
        print(
            f"{r.baudrate} | {r.snapshots_per_min:.0f} | {r.wire_limit_per_min:.0f} | "
            f"{r.wire_ratio:.3f} | {r.silent_neighbour_per_min:.0f} | "
            f"{r.silent_over_healthy:.2f} | "
            f"{r.silent_wire_ratio:.3f} | {r.cpu_ms_per_1000_registers:.1f} | {r.peak_rss_mb:.1f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version()}
    args.out.write_text(
        json.dumps({"machine": machine, "results": [asdict(r) for r in results]}, indent=2)
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
