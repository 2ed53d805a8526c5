"""A live console view of what the gateways publish: the demo's window onto the broker.

`LiveView` folds MQTT messages into the latest picture (pure, testable); `watch` is the
thin shell that subscribes and redraws.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiomqtt
from pydantic import ValidationError

from protocol.payloads import GatewayStatus, UnitEvent, UnitState
from protocol.topics import GATEWAY_STATUS, UNIT_EVENT, UNIT_STATE, UnitAddress

STATUS_MARK = {
    "available": ".", "charging": "C", "finishing": "F", "unavailable": "-", "faulted": "X",
}  # fmt: skip


@dataclass
class LiveView:
    """The newest status per gateway and state per unit, and the last few events."""

    prefix: str
    gateways: dict[str, GatewayStatus] = field(default_factory=dict)
    units: dict[tuple[str, UnitAddress], UnitState] = field(default_factory=dict)
    events: deque[tuple[str, UnitAddress, UnitEvent]] = field(
        default_factory=lambda: deque(maxlen=8)
    )
    malformed: int = 0

    def take(self, topic: str, payload: bytes) -> None:
        """Fold one message in; a malformed one is counted, never raised."""
        try:
            if found := GATEWAY_STATUS.match(self.prefix, topic):
                self.gateways[found[0]] = GatewayStatus.model_validate_json(payload)
            elif (found := UNIT_STATE.match(self.prefix, topic)) and found[1]:
                state = UnitState.model_validate_json(payload)
                current = self.units.get((found[0], found[1]))
                if current is None or state.seq > current.seq:
                    self.units[(found[0], found[1])] = state
            elif (found := UNIT_EVENT.match(self.prefix, topic)) and found[1]:
                self.events.append((found[0], found[1], UnitEvent.model_validate_json(payload)))
        except ValidationError:
            self.malformed += 1

    def render(self, now: datetime) -> str:
        lines = [
            f"chargenet live view {now:%H:%M:%S} UTC  (C charging, F full, . free, - off, X fault)"
        ]
        for gw_id, status in sorted(self.gateways.items()):
            lines.append(
                f"gateway {gw_id}: {status.state}  {len(status.units)} units  v{status.version}"
            )
        lines.append(f"{'unit':<22}{'SoC':>7}{'temp':>7}  {'state':<11}ports")
        for (gw_id, unit), state in sorted(self.units.items()):
            name = f"{gw_id}/{unit}"
            if not state.online or state.battery is None:
                lines.append(f"{name:<22}{'':>7}{'':>7}  {'OFFLINE':<11}")
                continue
            b = state.battery
            soc = f"{b.soc_pct:.1f}%" if b.soc_pct is not None else "?"
            temp = f"{b.temp_c:.0f}C" if b.temp_c is not None else "?"
            ports = " ".join(
                f"{p.port}{STATUS_MARK[p.status]}{(p.power_w or 0):>3.0f}W" for p in state.ports
            )
            lines.append(f"{name:<22}{soc:>7}{temp:>7}  {b.state or '?':<11}{ports}")
        lines.append("recent events:")
        for gw_id, unit, event in self.events:
            what = " ".join(str(x) for x in (event.port and f"port {event.port}", event.alarm,
                                              event.error, event.detail) if x)  # fmt: skip
            lines.append(f"  {event.ts:%H:%M:%S} {gw_id}/{unit} {event.kind} {what}"[:120])
        if self.malformed:
            lines.append(f"malformed messages ignored: {self.malformed}")
        return "\n".join(lines)


async def watch(host: str, port: int, prefix: str, refresh_s: float = 1.0) -> None:
    """Subscribe to everything under `prefix` and redraw the view until cancelled."""
    view = LiveView(prefix)
    tty = sys.stdout.isatty()
    async with aiomqtt.Client(host, port, identifier=None) as client:
        await client.subscribe(f"{prefix}/#", qos=1)
        redraw = asyncio.create_task(_redraw(view, tty, refresh_s))
        try:
            async for message in client.messages:
                payload = message.payload
                if isinstance(payload, bytes | bytearray):
                    view.take(message.topic.value, bytes(payload))
        finally:
            redraw.cancel()


async def _redraw(view: LiveView, tty: bool, refresh_s: float) -> None:
    """Repaint a terminal every `refresh_s`; into a pipe or file, print only what changed."""
    shown = ""
    while True:
        await asyncio.sleep(refresh_s)
        now = datetime.now(UTC)
        if tty:
            sys.stdout.write("\x1b[H\x1b[2J" + view.render(now) + "\n")
        elif (text := view.render(now).split("\n", 1)[1]) != shown:
            shown = text
            sys.stdout.write(f"\n{now:%H:%M:%S} UTC\n{text}\n")
        sys.stdout.flush()
