"""Putting a scenario on the air: lines, TCP servers, control API and the simulation clock.

`start_simulator` is what the CLI runs and what in-process tests use; it returns the
running parts and the `info` dict the CLI prints as its one JSON line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Final

from firmware_sim.control import ControlApi
from firmware_sim.errors import SimError
from firmware_sim.fleet import Fleet, build_fleet
from firmware_sim.scenario import FaultSpec, Scenario
from firmware_sim.serial_line import LineTiming, SerialLine
from firmware_sim.tcp_server import TcpServer

log = logging.getLogger(__name__)

TICK_S: Final = 0.25
"""Real seconds between physics steps (each step covers tick x speed simulated seconds)."""


@dataclass
class Simulator:
    """The running parts; `info` is the JSON line the CLI prints."""

    scenario: Scenario
    fleet: Fleet
    lines: list[SerialLine]
    servers: list[TcpServer]
    control: ControlApi
    physics: bool
    info: dict[str, Any] = field(default_factory=dict)
    sim_time_s: float = 0.0
    _clock: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock
        for line in self.lines:
            line.close()
        for server in self.servers:
            await server.close()
        await self.control.close()

    async def _run_clock(self) -> None:
        """Advance simulated time with the loop clock; fire scheduled faults when due."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        timeline = _timeline(self.scenario.fault)
        while True:
            await asyncio.sleep(TICK_S)
            now = loop.time()
            dt_s = (now - last) * self.scenario.speed
            last = now
            self.sim_time_s += dt_s
            if self.physics:
                self.fleet.advance(dt_s)
            while timeline and timeline[0][0] <= self.sim_time_s:
                _, clear, spec = timeline.pop(0)
                try:
                    if clear:
                        self.fleet.clear(spec.line, spec.unit_id, spec.fault())
                    else:
                        self.fleet.inject(spec.line, spec.unit_id, spec.fault())
                    log.info(
                        "%s %s on %s.%s",
                        "cleared" if clear else "injected",
                        spec.kind,
                        spec.line,
                        spec.unit_id,
                    )
                except SimError as error:
                    log.warning("scheduled fault: %s", error)


def _timeline(specs: list[FaultSpec]) -> list[tuple[float, bool, FaultSpec]]:
    """(when, is_clear, spec), in time order."""
    events = [(spec.at_s, False, spec) for spec in specs]
    events += [(spec.at_s + spec.duration_s, True, spec) for spec in specs if spec.duration_s]
    return sorted(events, key=lambda event: (event[0], event[1]))


async def start_simulator(
    scenario: Scenario,
    *,
    control_port: int = 0,
    physics: bool | None = None,
    plain_sunspec: bool = False,
) -> Simulator:
    """Open every line and port of `scenario` and start its clock."""
    fleet = build_fleet(scenario, plain_sunspec=plain_sunspec)
    lines: list[SerialLine] = []
    servers: list[TcpServer] = []
    control = ControlApi(fleet, port=control_port)
    sim = Simulator(
        scenario,
        fleet,
        lines,
        servers,
        control,
        physics=scenario.physics if physics is None else physics,
    )
    serial: dict[str, Any] = {}
    tcp: dict[str, Any] = {}
    try:
        for spec in scenario.line:
            timing = LineTiming(spec.baudrate, spec.parity, spec.stopbits)
            rng = random.Random(f"{scenario.seed}:{spec.name}:line")
            line = SerialLine(spec.name, fleet.on_line(spec.name), timing, rng)
            lines.append(line)
            serial[spec.name] = {
                "device": line.open(),
                "baudrate": spec.baudrate,
                "parity": spec.parity,
                "stopbits": spec.stopbits,
                "bytesize": 8,
                "units": [u.unit_id for u in spec.units],
            }
        for tcp_spec in scenario.tcp:
            server = TcpServer(
                tcp_spec.name, fleet.on_line(tcp_spec.name), tcp_spec.host, tcp_spec.port
            )
            servers.append(server)
            port = await server.start()
            tcp[tcp_spec.name] = {
                "host": tcp_spec.host,
                "port": port,
                "units": [u.unit_id for u in tcp_spec.units],
            }
        url = await control.start()
    except BaseException:
        await sim.aclose()
        raise
    sim.info = {"serial": serial, "tcp": tcp, "control": url}
    sim._clock = asyncio.create_task(sim._run_clock(), name="firmware_sim clock")
    return sim
