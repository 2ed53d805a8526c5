"""`chargenet drill`: run a drill (訓練) from a simulator scenario, and read its report.

`start` asks the server for a drill in the chosen municipalities (twins of their stations,
with the scenario's batteries on them), runs the simulator on the scenario and a gateway
under the drill's own gateway id against the broker, and when the scenario has played out
(or on Ctrl-C) ends the drill and prints its report. Everything the drill causes (crew
alerts, resident messages, bookings, incidents) is the twins' and so marked 訓練 / DRILL;
the real batteries go on being watched, and a real fault meanwhile alerts as real.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import httpx

from chargenet.demo import (
    INTERRUPTS,
    STARTUP_TIMEOUT_S,
    Processes,
    gateway_config_toml,
    read_announcement,
)
from firmware_sim.scenario import Scenario, load_scenario

TOKEN_ENV: Final = "CHARGENET_ADMIN_TOKEN"
JAPAN: Final = ZoneInfo("Asia/Tokyo")
REQUEST_TIMEOUT_S: Final = 30.0
TAIL_S: Final = 60.0
"""Real seconds the drill runs on after the scenario's last fault has cleared: time for the
recovery messages and the crews' last presses."""


def scenario_units(scenario: Scenario) -> list[str]:
    """The scenario's batteries as its gateway names them (`{line}.{unit}`), in order."""
    return [f"{bus.name}.{unit.unit_id}" for bus in [*scenario.line, *scenario.tcp]
            for unit in bus.units]  # fmt: skip


def scenario_length_s(scenario: Scenario) -> float:
    """Real seconds until the last fault has cleared (or started, if it never clears)."""
    ends = [f.at_s + (f.duration_s or 0.0) for f in scenario.fault]
    return max(ends, default=0.0) / scenario.speed


class Api:
    """The server's drill routes, with an operator token; an error names the server's reason."""

    def __init__(self, server: str, token: str) -> None:
        self._client = httpx.Client(
            base_url=server.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=REQUEST_TIMEOUT_S,
        )

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        reply = self._client.request(method, path, json=body)
        if reply.status_code >= 400:  # the body is the server's `{"error": {...}}`
            raise RuntimeError(f"{method} {path}: {reply.status_code} {reply.text}")
        return reply.json()

    def close(self) -> None:
        self._client.close()


def report_lines(report: dict[str, Any], tz: ZoneInfo = JAPAN) -> list[str]:
    """The report as an operator reads it at the end of a drill (times in Japan time)."""
    drill = report["drill"]
    acked, resolved = report["acknowledged"], report["resolved"]

    def local(iso: str | None) -> str:
        return "-" if iso is None else f"{datetime.fromisoformat(iso).astimezone(tz):%m/%d %H:%M}"

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f} s"

    lines = [
        f"drill {drill['id']} {drill['name']!r} ({drill['scenario']}) in "
        f"{', '.join(drill['municipalities'])}: {local(drill['started_at'])} - "
        f"{local(drill['ended_at'])}",
        f"incidents {report['incidents']}, alerts sent {sum(report['alerts_sent'].values())} "
        f"{report['alerts_sent']}",
        f"acknowledged {acked['count']}: median {seconds(acked['p50_s'])}, "
        f"slowest {seconds(acked['max_s'])}",
        f"resolved {resolved['count']}: median {seconds(resolved['p50_s'])}, "
        f"slowest {seconds(resolved['max_s'])}; open at the end {report['unresolved_at_end']}",
        f"bookings {report['bookings']}, resident notices {report['resident_notices']}",
        f"real incidents meanwhile (alerted as real) {report['real_incidents']}",
    ]
    for actor, acts in report["actors"].items():
        lines.append(f"  {actor}: acknowledged {acts['acknowledged']}, resolved {acts['resolved']}")
    return lines


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chargenet drill", description=__doc__)
    parser.add_argument("--server", default="http://127.0.0.1:8000", help="the server's URL")
    parser.add_argument("--token", help=f"an operator token (default: ${TOKEN_ENV})")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="run a drill from a scenario, then print its report")
    start.add_argument("--scenario", default="typhoon-night", help="a shipped name or a file")
    start.add_argument("--municipality", action="append", required=True,
                       help="a municipality to drill (repeat for several)")  # fmt: skip
    start.add_argument("--name", help="what the drill is called (default: the scenario)")
    start.add_argument("--mqtt", required=True, help="the broker the gateway publishes to")
    start.add_argument("--data-dir", type=Path, default=Path("drill-data"))
    start.add_argument("--report-period", type=float, default=10.0)
    start.add_argument("--duration", type=float,
                       help="real seconds to run (default: its faults, then a minute)")  # fmt: skip
    start.add_argument("--out", type=Path, help="also write the report here (JSON)")
    for name, what in (("end", "end a running drill"), ("report", "print a drill's report")):
        command = sub.add_parser(name, help=what)
        command.add_argument("drill_id", type=int)
        command.add_argument("--out", type=Path, help="also write the report here (JSON)")
    sub.add_parser("list", help="the drills, newest first")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    token = args.token or os.environ.get(TOKEN_ENV, "")
    if not token:
        print(f"chargenet drill: an operator token is needed (--token or ${TOKEN_ENV})",
              file=sys.stderr)  # fmt: skip
        return 2
    api = Api(args.server, token)
    try:
        if args.command == "start":
            drill_id = _start(api, args)
        elif args.command == "end":
            drill_id = api.call("POST", f"/drills/{args.drill_id}/end")["id"]
        elif args.command == "list":
            for drill in api.call("GET", "/drills")["drills"]:
                state = "running" if drill["active"] else f"ended {drill['ended_at']}"
                print(f"{drill['id']}\t{drill['name']}\t{', '.join(drill['municipalities'])}\t"
                      f"{state}")  # fmt: skip
            return 0
        else:
            drill_id = args.drill_id
        _print_report(api.call("GET", f"/drills/{drill_id}/report"), args.out)
    except (RuntimeError, httpx.HTTPError) as exc:
        print(f"chargenet drill: {exc}", file=sys.stderr)
        return 1
    finally:
        api.close()
    return 0


def _start(api: Api, args: argparse.Namespace) -> int:
    """Start the drill, play the scenario, end the drill (whatever stopped it); its id."""
    scenario = load_scenario(args.scenario)
    drill = api.call("POST", "/drills", {
        "name": args.name or str(args.scenario), "scenario": str(args.scenario),
        "municipalities": args.municipality, "units": scenario_units(scenario),
    })  # fmt: skip
    print(f"drill {drill['id']} started: gateway {drill['gw_id']}, "
          f"{len(drill['stations'])} stations", flush=True)  # fmt: skip
    args.data_dir.mkdir(parents=True, exist_ok=True)
    duration = args.duration if args.duration is not None else scenario_length_s(scenario) + TAIL_S
    INTERRUPTS.install()
    children = Processes()
    try:
        sim = children.start("simulator", ["sim", "--scenario", str(args.scenario)],
                             stdout=subprocess.PIPE)  # fmt: skip
        announced = read_announcement(sim, STARTUP_TIMEOUT_S)
        config = args.data_dir / f"{drill['gw_id']}.toml"
        config.write_text(gateway_config_toml(
            drill["gw_id"], args.mqtt, announced,
            (args.data_dir / f"{drill['gw_id']}-outbox.db").resolve(), args.report_period,
        ))  # fmt: skip
        children.start("gateway", ["gateway", "--config", str(config)])
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            children.check()
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))  # a watch, not a wait
    except KeyboardInterrupt:
        print("drill interrupted: ending it", file=sys.stderr)
    finally:
        try:  # ended first: its gateway's going away is then no incident
            api.call("POST", f"/drills/{drill['id']}/end")
        finally:
            children.stop_all()
    return int(drill["id"])


def _print_report(report: dict[str, Any], out: Path | None) -> None:
    print("\n".join(report_lines(report)))
    if out is not None:
        out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
