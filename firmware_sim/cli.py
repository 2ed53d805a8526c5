"""`chargenet sim`: run simulated batteries, or talk to a running simulator's control API.

Run: `--scenario demo` (a shipped name or a file) or ad hoc lines and TCP units. It prints
exactly one JSON line (devices, ports, control URL) to stdout, logs to stderr, and runs
until SIGINT/SIGTERM. Client: `fault ...`, `clear ...`, `phone ...`, `units`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import urllib.error
import urllib.request
from typing import Any

from firmware_sim.errors import SimError
from firmware_sim.faults import FaultKind
from firmware_sim.runtime import start_simulator
from firmware_sim.scenario import (
    SHIPPED,
    Defaults,
    Scenario,
    SerialLineSpec,
    TcpSpec,
    UnitSpec,
    load_scenario,
)
from protocol.payloads import PortError

CLIENT_COMMANDS = ("fault", "clear", "phone", "units")
log = logging.getLogger("firmware_sim")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in CLIENT_COMMANDS:
        return _client(args)
    return _run(args)


# -- running the simulator ---------------------------------------------------------------


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chargenet sim", description=__doc__)
    parser.add_argument("--scenario", help=f"a TOML file or a shipped name: {', '.join(SHIPPED)}")
    adhoc = parser.add_argument_group("ad hoc (instead of --scenario)")
    adhoc.add_argument("--serial-lines", type=int, help="serial lines (pty pairs)")
    adhoc.add_argument("--units-per-line", type=int, default=2)
    adhoc.add_argument("--ports", type=int, default=8, help="ports per battery")
    adhoc.add_argument("--baudrate", type=int, default=19200)
    adhoc.add_argument("--parity", choices=["N", "E", "O"], default="N")
    adhoc.add_argument("--stopbits", type=int, choices=[1, 2], default=2)
    adhoc.add_argument("--tcp-units", type=int, help="batteries behind one TCP port")
    adhoc.add_argument("--tcp-port", type=int, default=0, help="0 picks a free port")
    adhoc.add_argument("--soc", type=float, default=80.0, help="initial SoC in percent")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--speed", type=float, help="simulated seconds per real second")
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--no-physics", action="store_true", help="values change only on request")
    parser.add_argument("--plain-sunspec", action="store_true", help="no vendor model 64900")
    parser.add_argument("--log-level", default="INFO")
    return parser


def build_scenario(args: argparse.Namespace) -> Scenario:
    """The scenario the options describe: a file or shipped name, or ad hoc lines."""
    if args.serial_lines is None and args.tcp_units is None:
        scenario = load_scenario(args.scenario or "demo")
    else:
        units = [UnitSpec(unit_id=i + 1) for i in range(args.units_per_line)]
        scenario = Scenario(
            defaults=Defaults(ports=args.ports, soc_pct=args.soc),
            line=[
                SerialLineSpec(
                    name=f"line-{n + 1}",
                    units=units,
                    baudrate=args.baudrate,
                    parity=args.parity,
                    stopbits=args.stopbits,
                )
                for n in range(args.serial_lines or 0)
            ],
            tcp=[
                TcpSpec(
                    name="tcp-1",
                    port=args.tcp_port,
                    units=[UnitSpec(unit_id=i + 1) for i in range(args.tcp_units)],
                )
            ]
            if args.tcp_units
            else [],
        )
    overrides: dict[str, Any] = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.speed is not None:
        overrides["speed"] = args.speed
    return scenario.model_copy(update=overrides)


def _run(argv: list[str]) -> int:
    args = _run_parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        scenario = build_scenario(args)
    except (SimError, ValueError) as error:
        print(f"chargenet sim: {error}", file=sys.stderr)
        return 2
    return asyncio.run(_serve(scenario, args))


async def _serve(scenario: Scenario, args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    sim = await start_simulator(
        scenario,
        control_port=args.control_port,
        physics=False if args.no_physics else None,
        plain_sunspec=args.plain_sunspec,
    )
    print(json.dumps(sim.info), flush=True)
    log.info("serving %d units; control at %s", len(sim.fleet.units), sim.info["control"])
    try:
        await stop.wait()
    finally:
        await sim.aclose()
    log.info("stopped")
    return 0


# -- the control API client ----------------------------------------------------------------


def _client_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chargenet sim", description="control a simulator")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("fault", "clear"):
        cmd = sub.add_parser(name, help=f"{name} a fault on one unit")
        _target(cmd)
        cmd.add_argument("kind", choices=[k.value for k in FaultKind])
        cmd.add_argument("--port", type=int)
        cmd.add_argument("--error", choices=[e.value for e in PortError])
        cmd.add_argument("--delay-ms", type=int)
    phone = sub.add_parser("phone", help="plug or unplug a phone")
    _target(phone)
    phone.add_argument("--port", type=int, required=True)
    phone.add_argument("--unplug", action="store_true")
    units = sub.add_parser("units", help="list units")
    units.add_argument("--control", required=True, help="the control URL from the JSON line")
    return parser


def _target(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--control", required=True, help="the control URL from the JSON line")
    cmd.add_argument("--line", required=True)
    cmd.add_argument("--unit", type=int, required=True)


def _client(argv: list[str]) -> int:
    args = _client_parser().parse_args(argv)
    if args.command == "units":
        return _call(args.control, "GET", "/units", None)
    body: dict[str, Any] = {"line": args.line, "unit_id": args.unit}
    if args.command == "phone":
        body |= {"port": args.port, "plugged": not args.unplug}
        return _call(args.control, "POST", "/phones", body)
    body["kind"] = args.kind
    for key in ("port", "error", "delay_ms"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    method = "POST" if args.command == "fault" else "DELETE"
    return _call(args.control, method, "/faults", body)


def _call(url: str, method: str, path: str, body: dict[str, Any] | None) -> int:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url.rstrip("/") + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            print(response.read().decode())
            return 0
    except urllib.error.HTTPError as error:
        print(error.read().decode(), file=sys.stderr)
        return 1
    except OSError as error:
        print(f"chargenet sim: cannot reach {url}: {error}", file=sys.stderr)
        return 1
