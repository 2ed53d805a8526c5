"""One handler per message kind: fold a fresh (never seen) message into the batch's rows.

Handlers run in seq order per gateway inside the batch's transaction and never query:
everything they touch was loaded by `apply.py`. Duplicates never reach them.
"""

from __future__ import annotations

import logging
from typing import Final

from protocol.payloads import CommandResult, GatewayStatus, UnitEvent, UnitState
from server.ingest.batch import Batch
from server.ingest.router import Inbound

log = logging.getLogger(__name__)

UNIT_STATE_COLUMNS: Final = ("state_seq", "state_ts", "received_at", "online", "stale", "soc_pct",
                             "soh_pct", "voltage_v", "current_a", "power_w", "temp_c", "rated_wh",
                             "battery_state", "alarms")  # fmt: skip
"""The Unit columns `on_unit_state` sets: what `apply.py` writes back for an applied state."""
PORT_STATE_COLUMNS: Final = ("status", "occupied", "enabled", "power_w", "energy_wh", "temp_c",
                             "error", "vendor_code", "display_code", "session_s")  # fmt: skip
"""The Port columns `on_unit_state` sets."""
RETIRED_RUNS: Final = 16
"""Earlier runs of seqs remembered per gateway (see `apply._restarts`)."""


def on_unit_state(batch: Batch, message: Inbound[UnitState]) -> None:
    """Newest by seq wins; an older snapshot (a replay) is history and changes nothing."""
    assert message.unit is not None
    unit = batch.unit(message.gw_id, str(message.unit))
    state = message.payload
    if state.seq <= unit.state_seq:
        batch.history += 1
        return
    batch.applied_units[unit.id] = unit
    unit.state_seq = state.seq
    unit.state_ts = state.ts
    unit.received_at = message.received_at
    unit.online = state.online
    unit.stale = False
    battery = state.battery
    if battery is not None:
        unit.soc_pct = battery.soc_pct
        unit.soh_pct = battery.soh_pct
        unit.voltage_v = battery.voltage_v
        unit.current_a = battery.current_a
        unit.power_w = battery.power_w
        unit.temp_c = battery.temp_c
        unit.rated_wh = battery.rated_wh
        unit.battery_state = battery.state
        if list(unit.alarms or []) != battery.alarms:
            unit.alarms = list(battery.alarms)
    for reported in state.ports:
        row = batch.port(unit, reported.port)
        row.status = reported.status.value
        row.occupied = reported.occupied
        row.enabled = reported.enabled
        row.power_w = reported.power_w
        row.energy_wh = reported.energy_wh
        row.temp_c = reported.temp_c
        row.error = reported.error.value
        row.vendor_code = reported.vendor_code
        row.display_code = reported.display_code
        row.session_s = reported.session_s


def on_unit_event(batch: Batch, message: Inbound[UnitEvent]) -> None:
    """Stored once per event_id (the insert skips ids already stored)."""
    assert message.unit is not None
    event = message.payload
    batch.add_event(
        {
            "event_id": event.event_id,
            "gw_id": message.gw_id,
            "unit": str(message.unit),
            "kind": event.kind.value,
            "port": event.port,
            "alarm": event.alarm,
            "error": event.error.value if event.error else None,
            "detail": event.detail[:500] if event.detail else None,
            "seq": event.seq,
            "ts": event.ts,
            "historical": event.historical,
            "received_at": message.received_at,
        }
    )


def on_gateway_status(batch: Batch, message: Inbound[GatewayStatus]) -> None:
    """Birth or Last Will, newest by seq (the will's seq is reserved after its birth's)."""
    gateway = batch.gateway(message.gw_id)
    status = message.payload
    if status.seq <= gateway.status_seq:
        return
    gateway.state = status.state
    gateway.status_seq = status.seq
    gateway.status_ts = status.ts
    gateway.boot_id = status.boot_id[:64]
    if gateway.seq_run is None:  # the first run heard of (`apply._restarts` handles others)
        gateway.seq_run = status.seq_run
    gateway.version = status.version[:32]


def on_command_result(batch: Batch, message: Inbound[CommandResult]) -> None:
    result = message.payload
    row = batch.commands.get(result.cmd_id)
    if row is None or row.gw_id != message.gw_id:
        log.warning("result for unknown command %r from %s", result.cmd_id[:64], message.gw_id)
        return
    row.ok = result.ok
    row.error = result.error[:500] if result.error else None
    row.answered_at = message.received_at
    batch.answer(row.cmd_id, row.gw_id, result.ok, row.error, message.received_at)
