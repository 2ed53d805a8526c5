"""Gateway messages as they arrive on the wire: (topic, payload bytes), for the ingest tests."""

from __future__ import annotations

from datetime import UTC, datetime

from protocol import topics
from protocol.payloads import (
    BatteryState,
    CommandResult,
    EventKind,
    GatewayStatus,
    PortError,
    PortState,
    PortStatus,
    UnitEvent,
    UnitState,
)
from protocol.topics import DEFAULT_PREFIX, UnitAddress

PREFIX = DEFAULT_PREFIX
TS = datetime.now(UTC).replace(microsecond=0)
"""When these messages were measured: now (a server refuses a ts weeks away from receipt)."""
Wire = tuple[str, bytes]


def state(
    gw: str,
    unit: str,
    seq: int,
    statuses: tuple[str, ...] = ("available", "available"),
    online: bool = True,
    historical: bool = False,
    soc_pct: float = 80.0,
    occupied: bool = False,
    ts: datetime = TS,
) -> Wire:
    ports = [
        PortState(port=i, status=PortStatus(s), occupied=occupied, enabled=True, power_w=0.0,
                  energy_wh=0.0, temp_c=25.0,
                  error=PortError.OVER_CURRENT if s == "faulted" else PortError.NONE)
        for i, s in enumerate(statuses, start=1)
    ]  # fmt: skip
    battery = BatteryState(soc_pct=soc_pct, soh_pct=97.0, voltage_v=51.2, current_a=-1.0,
                           power_w=-50.0, temp_c=30.0, rated_wh=500.0, state="connected",
                           alarms=[])  # fmt: skip
    payload = UnitState(seq=seq, ts=ts, historical=historical, online=online, battery=battery,
                        ports=ports)  # fmt: skip
    topic = topics.UNIT_STATE.format(PREFIX, gw, UnitAddress.parse(unit))
    return topic, payload.model_dump_json().encode()


def status(
    gw: str, seq: int, state: str = "online", units: tuple[str, ...] = (), run: str = "run-1"
) -> Wire:
    payload = GatewayStatus(seq=seq, ts=TS, state=state,  # type: ignore[arg-type]
                            boot_id=f"boot-of-{run}", version="0.1.0", units=list(units),
                            seq_run=run)  # fmt: skip
    return topics.GATEWAY_STATUS.format(PREFIX, gw), payload.model_dump_json().encode()


def event(gw: str, unit: str, seq: int, event_id: str, port: int = 2) -> Wire:
    payload = UnitEvent(seq=seq, ts=TS, event_id=event_id, kind=EventKind.PORT_FAULTED,
                        port=port, error=PortError.OVER_CURRENT)  # fmt: skip
    topic = topics.UNIT_EVENT.format(PREFIX, gw, UnitAddress.parse(unit))
    return topic, payload.model_dump_json().encode()


def result(gw: str, seq: int, cmd_id: str, ok: bool = True, error: str | None = None) -> Wire:
    payload = CommandResult(seq=seq, ts=TS, cmd_id=cmd_id, ok=ok, error=error)
    return topics.COMMAND_RESULT.format(PREFIX, gw), payload.model_dump_json().encode()
