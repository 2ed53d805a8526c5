"""Messages as the gateway produces them, for the outbox and publisher tests."""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from gateway.config import MqttConfig
from gateway.outbox import Entry, Outbox
from gateway.publisher import Publisher
from protocol import topics
from protocol.payloads import (
    BatteryState,
    EventKind,
    GatewayStatus,
    PortState,
    PortStatus,
    UnitEvent,
    UnitState,
)
from protocol.topics import UnitAddress

PREFIX: Final = "chargenet/v1"
GW: Final = "gw-test"
T0: Final = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
_event_ids = itertools.count()


def unit(n: int) -> UnitAddress:
    return UnitAddress("rs485-1", n)


@functools.cache
def _snapshot(ports: int) -> UnitState:
    battery = BatteryState(
        soc_pct=81.5,
        soh_pct=97.0,
        voltage_v=51.2,
        current_a=-3.1,
        power_w=-158.7,
        temp_c=31.4,
        rated_wh=2048.0,
        state="connected",
        alarms=[],
    )
    port_states = [
        PortState(
            port=p,
            status=PortStatus.CHARGING,
            occupied=True,
            enabled=True,
            power_w=18.2,
            energy_wh=3.1,
            temp_c=30.2,
            display_code="K7Q2",
            session_s=1200,
        )
        for p in range(1, ports + 1)
    ]
    return UnitState(seq=0, ts=T0, online=True, battery=battery, ports=port_states)


def state_entry(
    n: int, minute: float = 0.0, ports: int = 8, gw: str = GW, rng: random.Random | None = None
) -> Entry:
    """A full snapshot of unit `n`, retained, superseding older snapshots of that unit.

    With `rng` its readings vary from snapshot to snapshot as a live battery's do, for what
    a backlog of them takes on disk; without, every snapshot reads the same.
    """
    topic = topics.UNIT_STATE.format(PREFIX, gw, unit(n))
    snapshot = _snapshot(ports)
    update: dict[str, Any] = {"ts": T0 + timedelta(minutes=minute)}
    if rng is not None:
        update["battery"] = rng.choice(_live_batteries())
        update["ports"] = [rng.choice(variants) for variants in _live_ports(ports)]
    return Entry(topic, snapshot.model_copy(update=update), retain=True, supersedes=topic)


@functools.cache
def _live_batteries() -> tuple[BatteryState, ...]:
    """Batteries at random charges and loads, made once (a model takes tens of µs)."""
    rng = random.Random(1)
    battery = _snapshot(1).battery
    assert battery is not None
    return tuple(
        battery.model_copy(
            update={"soc_pct": round(rng.uniform(20, 100), 1), "power_w": -rng.randrange(150)}
        )
        for _ in range(256)
    )


@functools.cache
def _live_ports(ports: int) -> tuple[tuple[PortState, ...], ...]:
    """For each port, readings at random to draw from, made once."""
    rng = random.Random(ports)
    return tuple(tuple(_live_port(p, rng) for _ in range(256)) for p in range(1, ports + 1))


def _live_port(port: int, rng: random.Random) -> PortState:
    """A port with a phone charging (most of the time) or none, its readings at random."""
    occupied = rng.random() < 0.7
    return PortState(
        port=port,
        status=PortStatus.CHARGING if occupied else PortStatus.AVAILABLE,
        occupied=occupied,
        enabled=True,
        power_w=round(rng.uniform(0.5, 18.0), 2) if occupied else 0.0,
        energy_wh=round(rng.uniform(0.0, 15.0), 3),
        temp_c=round(rng.uniform(25.0, 40.0), 1),
        session_s=rng.randrange(7200) if occupied else 0,
    )


def event_entry(n: int, minute: float = 0.0, gw: str = GW) -> Entry:
    """A port fault of unit `n` with a unique event id; never superseded."""
    message = UnitEvent(
        seq=0,
        ts=T0 + timedelta(minutes=minute),
        event_id=f"evt-{next(_event_ids):08d}",
        kind=EventKind.PORT_FAULTED,
        port=1,
    )
    return Entry(topics.UNIT_EVENT.format(PREFIX, gw, unit(n)), message, False, None)


def make_publisher(
    url: str,
    outbox: Outbox,
    on_command: Callable[[bytes], Awaitable[None]] | None = None,
    units: int = 3,
    minute: Callable[[], float] = lambda: 0.0,
    **mqtt: Any,
) -> Publisher:
    """A publisher for gateway `GW` with `units` batteries, reconnecting fast."""
    config = MqttConfig(url=url, reconnect_min_s=0.05, reconnect_max_s=0.5, keepalive_s=5, **mqtt)
    inventory = [str(unit(n)) for n in range(1, units + 1)]

    def birth() -> GatewayStatus:
        return GatewayStatus(
            seq=0,
            ts=datetime.now(UTC),
            state="online",
            boot_id="boot-1",
            version="0.1.0",
            units=inventory,
        )

    def snapshots() -> list[Entry]:
        return [state_entry(n, minute()) for n in range(1, units + 1)]

    async def ignore(payload: bytes) -> None:
        """Commands are not what these tests are about."""

    return Publisher(
        config,
        f"chargenet-gw-{GW}",
        GW,
        outbox,
        birth,
        snapshots,
        on_command or ignore,
        version="0.1.0",
        boot_id="boot-1",
    )
