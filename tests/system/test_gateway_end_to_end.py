"""Simulator -> (pty at 19200 baud, TCP) -> gateway -> Mosquitto -> an independent subscriber."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from protocol.payloads import GatewayStatus, UnitEvent, UnitState
from tests.conditions import wait_until
from tests.faults import Outcome, record
from tests.mosquitto import Mosquitto
from tests.system.harness import Child, Recorder, Simulator, quiet_simulator, start_gateway

GW = "gw-test"
PREFIX = f"chargenet/v1/gw/{GW}"
pytestmark = pytest.mark.slow


def state_of(recorder: Recorder, unit: str) -> dict[str, Any] | None:
    return recorder.latest(f"/unit/{unit}/state")


def events_of(recorder: Recorder, unit: str | None = None) -> list[dict[str, Any]]:
    suffix = f"/unit/{unit}/event" if unit else "/event"
    return [m.payload for m in recorder.messages(suffix)]


def online(recorder: Recorder, *units: str) -> bool:
    return all((s := state_of(recorder, u)) is not None and s["online"] for u in units)


def port(state: dict[str, Any] | None, number: int) -> dict[str, Any]:
    assert state is not None
    found: dict[str, Any] = state["ports"][number - 1]
    return found


def reads_served(sim: Simulator, line: str, unit_id: int) -> int:
    served: int = sim.unit(line, unit_id)["requests"]
    return served


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    simulator = quiet_simulator(tmp_path, units_per_line=2, tcp_units=1)
    yield simulator
    simulator.stop()


@pytest.fixture
def recorder(broker: Mosquitto) -> Iterator[Recorder]:
    rec = Recorder(broker.port, client_id="e2e-recorder", persistent=True)
    yield rec
    rec.close()


@pytest.fixture
def gateway(tmp_path: Path, sim: Simulator, broker: Mosquitto) -> Iterator[Child]:
    child = start_gateway(tmp_path, sim, broker.url)
    yield child
    if child.alive:
        assert child.stop() == 0, child.log_text()


UNITS = ("line-1.1", "line-1.2", "tcp-1.1")


def test_states_over_pty_and_tcp_match_the_batteries(
    sim: Simulator, gateway: Child, recorder: Recorder, broker: Mosquitto
) -> None:
    wait_until(lambda: online(recorder, *UNITS), 30, "all three units online")
    for unit in UNITS:
        line, unit_id = unit.rsplit(".", 1)
        state = UnitState.model_validate(state_of(recorder, unit))
        truth = sim.unit(line, int(unit_id))
        assert state.battery is not None
        assert state.battery.soc_pct == pytest.approx(truth["soc_pct"], abs=0.1)
        assert len(state.ports) == 4
        assert [p.status for p in state.ports] == ["available"] * 4
    status = GatewayStatus.model_validate(recorder.latest(f"{GW}/status"))
    assert status.state == "online"
    assert sorted(status.units) == sorted(UNITS)

    # A fresh subscriber sees the present at once from the retained messages.
    late = Recorder(broker.port, client_id="late")
    try:
        wait_until(lambda: online(late, *UNITS), 10, "retained states for a late subscriber")
        assert all(m.retain for m in late.messages("/state"))
    finally:
        late.close()


def test_port_fault_latches_until_a_crew_resets_it(
    sim: Simulator, gateway: Child, recorder: Recorder
) -> None:
    wait_until(lambda: online(recorder, "line-1.1"), 30, "unit online")
    sim.inject("line-1", 1, "port_fault", port=2, error="over_current")
    wait_until(
        lambda: port(state_of(recorder, "line-1.1"), 2)["status"] == "faulted", 10, "faulted"
    )
    faulted = [e for e in events_of(recorder, "line-1.1") if e["kind"] == "port_faulted"]
    assert [(e["port"], e["error"]) for e in faulted] == [(2, "over_current")]
    # The cause goes away, but the battery latches the fault until its alarms are reset.
    served = reads_served(sim, "line-1", 1)
    sim.clear("line-1", 1, "port_fault", port=2)
    wait_until(lambda: reads_served(sim, "line-1", 1) >= served + 6, 10, "polls after clear")
    assert port(state_of(recorder, "line-1.1"), 2)["status"] == "faulted"
    command(recorder, json.dumps({"cmd_id": "reset-1", "unit": "line-1.1",
                                  "action": "reset_alarms"}).encode())  # fmt: skip
    wait_until(
        lambda: any(e["kind"] == "port_recovered" for e in events_of(recorder, "line-1.1")),
        10,
        "port_recovered",
    )
    assert port(state_of(recorder, "line-1.1"), 2)["status"] == "available"
    event = UnitEvent.model_validate(events_of(recorder, "line-1.1")[-1])
    assert not event.historical
    assert not [m for m in recorder.messages("/event") if m.retain]


def test_last_will_marks_a_killed_gateway_offline(
    sim: Simulator, gateway: Child, recorder: Recorder, broker: Mosquitto
) -> None:
    wait_until(lambda: online(recorder, *UNITS), 30, "units online")
    gateway.kill()
    wait_until(
        lambda: (recorder.latest(f"{GW}/status") or {}).get("state") == "offline",
        30,
        "Last Will",
    )
    late = Recorder(broker.port, client_id="after-death")
    try:
        wait_until(lambda: late.latest(f"{GW}/status"), 10, "retained status")
        assert late.latest(f"{GW}/status")["state"] == "offline"  # type: ignore[index]
    finally:
        late.close()


@pytest.mark.reliability
def test_broker_outage_replays_every_event_once_in_order_as_history(
    sim: Simulator, gateway: Child, recorder: Recorder, broker: Mosquitto
) -> None:
    wait_until(lambda: online(recorder, *UNITS), 30, "units online")
    before = {e["event_id"] for e in events_of(recorder)}
    broker.stop()
    served = reads_served(sim, "line-1", 2)
    sim.inject("line-1", 1, "port_fault", port=1, error="over_current")
    sim.inject("line-1", 2, "port_fault", port=3, error="high_temperature")
    sim.inject("line-1", 2, "over_temp")
    # Let the gateway poll the faulted units a few times while the broker is down.
    wait_until(lambda: reads_served(sim, "line-1", 2) >= served + 10, 20, "polls during outage")
    broker.start()
    back = time.monotonic()

    def outage_events() -> list[dict[str, Any]]:
        return [e for e in events_of(recorder) if e["event_id"] not in before]

    wanted = {("port_faulted", 1), ("port_faulted", 3)}
    wait_until(
        lambda: (
            wanted <= {(e["kind"], e.get("port")) for e in outage_events()}
            and any(e.get("alarm") == "over_temp_alarm" for e in outage_events())
        ),
        30,
        "the events raised during the outage",
    )
    recovery_s = time.monotonic() - back
    replayed = outage_events()
    ids = [e["event_id"] for e in replayed]
    assert len(ids) == len(set(ids)), "an event arrived twice"
    raised = {(e["kind"], e.get("port")) for e in replayed} & wanted
    alarmed = any(e.get("alarm") == "over_temp_alarm" for e in replayed)
    record(Outcome("broker down while batteries fault, then back", len(wanted) + 1,
                   len(raised) + alarmed, len(ids) - len(set(ids)), recovery_s,
                   "events raised during the outage, at the broker"))  # fmt: skip
    assert all(e["historical"] for e in replayed)
    seqs = [e["seq"] for e in replayed]
    assert seqs == sorted(seqs)
    # The present went out before the history: a fresh state newer than every replayed event.
    first_state_after = next(
        m.payload for m in recorder.messages("/state")
        if m.payload["seq"] > max(seqs) and not m.payload["historical"]
    )  # fmt: skip
    assert first_state_after["online"]


def test_sigkill_with_a_backlog_loses_nothing_and_seq_continues(
    tmp_path: Path, sim: Simulator, gateway: Child, recorder: Recorder, broker: Mosquitto
) -> None:
    wait_until(lambda: online(recorder, *UNITS), 30, "units online")
    last_seq_before = max(m.payload["seq"] for m in recorder.messages() if "seq" in m.payload)
    broker.stop()
    served = reads_served(sim, "line-1", 1)
    sim.inject("line-1", 1, "port_fault", port=4, error="over_voltage")
    wait_until(lambda: reads_served(sim, "line-1", 1) >= served + 10, 20, "polls during outage")
    gateway.kill()
    broker.start()
    restarted = start_gateway(tmp_path, sim, broker.url)
    try:
        wait_until(
            lambda: any(
                e["kind"] == "port_faulted" and e["port"] == 4 for e in events_of(recorder)
            ),
            30,
            "the event stored before the SIGKILL",
        )
        faulted = [e for e in events_of(recorder) if e["kind"] == "port_faulted"]
        assert len({e["event_id"] for e in faulted}) >= 1
        assert faulted[0]["historical"]
        wait_until(
            lambda: (recorder.latest(f"{GW}/status") or {}).get("state") == "online",
            10,
            "the restarted gateway's birth",
        )
        seqs = [m.payload["seq"] for m in recorder.messages() if "seq" in m.payload]
        assert min(s for s in seqs if s > last_seq_before) > last_seq_before
        assert max(seqs) > faulted[0]["seq"]
    finally:
        assert restarted.stop() == 0, restarted.log_text()


def test_garbage_on_the_line_is_survived(
    sim: Simulator, gateway: Child, recorder: Recorder
) -> None:
    wait_until(lambda: online(recorder, "line-1.1", "line-1.2"), 30, "units online")
    served = reads_served(sim, "line-1", 2)
    sim.inject("line-1", 1, "garbage")
    wait_until(lambda: reads_served(sim, "line-1", 2) >= served + 10, 20, "polls in garbage")
    sim.clear("line-1", 1, "garbage")
    count = len(recorder.messages("line-1.1/state"))
    sim.inject("line-1", 1, "port_fault", port=1, error="over_current")
    wait_until(
        lambda: (
            len(recorder.messages("line-1.1/state")) > count
            and port(state_of(recorder, "line-1.1"), 1)["status"] == "faulted"
        ),
        20,
        "line-1.1 read correctly again",
    )
    assert gateway.alive


def command(recorder: Recorder, payload: bytes) -> None:
    info = recorder.client.publish(f"{PREFIX}/cmd", payload, qos=1)
    info.wait_for_publish(10)


def result_of(recorder: Recorder, cmd_id: str) -> dict[str, Any] | None:
    return next(
        (m.payload for m in recorder.messages("/cmd/result") if m.payload["cmd_id"] == cmd_id),
        None,
    )


def test_commands_reach_the_battery_and_are_answered(
    sim: Simulator, gateway: Child, recorder: Recorder
) -> None:
    wait_until(lambda: online(recorder, "line-1.1", "tcp-1.1"), 30, "units online")
    send: list[dict[str, Any]] = [
        {"cmd_id": "c1", "unit": "line-1.1", "action": "set_display", "port": 1, "value": "K7Q2"},
        {"cmd_id": "c2", "unit": "tcp-1.1", "action": "disable_port", "port": 2},
        {"cmd_id": "c3", "unit": "line-1.1", "action": "reset_alarms"},
    ]
    for body in send:
        command(recorder, json.dumps(body).encode())
    for body in send:
        result = wait_until(partial(result_of, recorder, body["cmd_id"]), 15, body["cmd_id"])
        assert result is not None and result["ok"], result
    wait_until(
        lambda: port(state_of(recorder, "line-1.1"), 1)["display_code"] == "K7Q2", 10, "code"
    )
    wait_until(lambda: port(state_of(recorder, "tcp-1.1"), 2)["status"] == "unavailable", 10, "off")
    assert sim.unit("line-1", 1)["port_states"][0]["display_code"] == "K7Q2"
    # A redelivery (the server resending, its result lost) is answered again, not re-run.
    answers = len(recorder.messages("/cmd/result"))
    command(recorder, json.dumps(send[0]).encode())
    wait_until(lambda: len(recorder.messages("/cmd/result")) == answers + 1, 15,
               "the redelivered command answered again")  # fmt: skip
    assert [m.payload["ok"] for m in recorder.messages("/cmd/result")
            if m.payload["cmd_id"] == "c1"] == [True, True]  # fmt: skip
    assert "c1 already done, answering the redelivery" in gateway.log_text()

    command(recorder, b"{not json")
    command(recorder, json.dumps({"unit": "line-1.1", "action": "explode"}).encode())
    command(recorder, json.dumps({"cmd_id": "bad-port", "unit": "line-1.1",
                                  "action": "enable_port", "port": 9}).encode())  # fmt: skip
    command(recorder, json.dumps({"cmd_id": "no-port", "unit": "line-1.1",
                                  "action": "enable_port"}).encode())  # fmt: skip
    command(recorder, json.dumps({"cmd_id": "no-bus", "unit": "rs485-9.1",
                                  "action": "reset_alarms"}).encode())  # fmt: skip
    for cmd_id, why in (("bad-port", "port 9"), ("no-port", "port"), ("no-bus", "rs485-9")):
        result = wait_until(partial(result_of, recorder, cmd_id), 15, cmd_id)
        assert result is not None and not result["ok"] and why in result["error"], result
    command(recorder, json.dumps({"cmd_id": "c4", "unit": "tcp-1.1",
                                  "action": "enable_port", "port": 2}).encode())  # fmt: skip
    last = wait_until(partial(result_of, recorder, "c4"), 15, "c4 after the bad ones")
    assert last is not None and last["ok"]
    assert gateway.alive
    assert "malformed command ignored" in gateway.log_text()


def test_silent_unit_does_not_slow_its_neighbours(tmp_path: Path, broker: Mosquitto) -> None:
    sim = quiet_simulator(tmp_path, units_per_line=3, seed=None)
    gateway = start_gateway(tmp_path, sim, broker.url, poll_period_s=0.0)
    recorder = Recorder(broker.port)
    try:
        wait_until(lambda: online(recorder, "line-1.1", "line-1.2", "line-1.3"), 30, "online")

        def rates(window_s: float) -> dict[int, float]:
            first = {u: reads_served(sim, "line-1", u) for u in (1, 2, 3)}
            started = time.monotonic()
            wait_until(lambda: time.monotonic() - started >= window_s, window_s + 5, "window")
            elapsed = time.monotonic() - started
            return {u: (reads_served(sim, "line-1", u) - first[u]) / elapsed for u in (1, 2, 3)}

        healthy = rates(3.0)
        assert min(healthy.values()) > 0
        sim.inject("line-1", 2, "silent")
        wait_until(
            lambda: (state_of(recorder, "line-1.2") or {}).get("online") is False, 20, "lost"
        )
        assert any(e["kind"] == "unit_lost" for e in events_of(recorder, "line-1.2"))
        degraded = rates(3.0)
        # The silent unit costs its neighbours nothing: each keeps >= 0.9 of its rate.
        for unit_id in (1, 3):
            assert degraded[unit_id] >= 0.9 * healthy[unit_id], (healthy, degraded)
        sim.clear("line-1", 2, "silent")
        wait_until(
            lambda: any(e["kind"] == "unit_found" for e in events_of(recorder, "line-1.2")),
            40,
            "unit found again",
        )
    finally:
        recorder.close()
        gateway.stop()
        sim.stop()


def test_pysunspec2_reads_what_the_gateway_publishes(
    sim: Simulator, gateway: Child, recorder: Recorder
) -> None:
    import sunspec2.modbus.client as sunspec_client

    wait_until(lambda: online(recorder, "tcp-1.1"), 30, "tcp unit online")
    sim.plug("tcp-1", 1, 3)
    wait_until(
        lambda: port(state_of(recorder, "tcp-1.1"), 3)["status"] == "charging", 15, "charging"
    )
    published = UnitState.model_validate(state_of(recorder, "tcp-1.1"))
    endpoint = sim.announced["tcp"]["tcp-1"]
    device = sunspec_client.SunSpecModbusClientDeviceTCP(
        slave_id=1, ipaddr=endpoint["host"], ipport=endpoint["port"]
    )
    try:
        device.scan()
        battery = device.models[802][0]
        battery.read()
        dc = device.models[714][0]
        dc.read()
        assert published.battery is not None
        assert battery.SoC.cvalue == pytest.approx(published.battery.soc_pct)
        assert battery.V.cvalue == pytest.approx(published.battery.voltage_v)
        assert dc.Prt[2].DCW.cvalue == pytest.approx(published.ports[2].power_w)
        assert dc.Prt[2].DCSta.value == 1  # ON
    finally:
        device.close()
