"""Each fault kind changes what the battery shows, and clearing it undoes that."""

from __future__ import annotations

import pytest

from firmware_sim.battery import DC_ERROR, DC_OFF, STATE_CONNECTED, STATE_FAULT, SimBattery
from firmware_sim.errors import FaultError
from firmware_sim.faults import Fault, FaultKind, apply_fault, clear_fault
from protocol.payloads import PortError
from protocol.sunspec import BATTERY_EVT1


def bit(name: str) -> int:
    return 1 << BATTERY_EVT1.index(name)


def test_port_fault_and_clear() -> None:
    battery = SimBattery.create(1, 4, latch_alarms=False)
    battery.ports[1].power_w = 10.0
    fault = Fault(FaultKind.PORT_FAULT, port=2, error=PortError.OVER_CURRENT)
    apply_fault(battery, fault)
    assert battery.port_status(1) == DC_ERROR and battery.port_power_w(1) == 0
    clear_fault(battery, fault)
    assert battery.port_status(1) != DC_ERROR and battery.port_power_w(1) == 10.0


def test_over_temp() -> None:
    battery = SimBattery.create(1, 4, latch_alarms=False)
    apply_fault(battery, Fault(FaultKind.OVER_TEMP))
    assert battery.evt1() & bit("over_temp_alarm")
    assert battery.state == STATE_CONNECTED
    clear_fault(battery, Fault(FaultKind.OVER_TEMP))
    assert battery.evt1() == 0


def test_low_soc_restores_the_real_soc() -> None:
    battery = SimBattery.create(1, 4, soc_pct=70.0)
    apply_fault(battery, Fault(FaultKind.LOW_SOC))
    assert battery.effective_soc_pct == 4.0
    assert battery.evt1() & bit("under_soc_min_warning")
    clear_fault(battery, Fault(FaultKind.LOW_SOC))
    assert battery.effective_soc_pct == 70.0


def test_battery_fault_stops_every_port() -> None:
    battery = SimBattery.create(1, 2)
    battery.ports[0].power_w = 9.0
    apply_fault(battery, Fault(FaultKind.BATTERY_FAULT))
    assert battery.state == STATE_FAULT and battery.port_power_w(0) == 0
    clear_fault(battery, Fault(FaultKind.BATTERY_FAULT))
    assert battery.state == STATE_CONNECTED and battery.port_power_w(0) == 9.0


def test_port_disabled() -> None:
    battery = SimBattery.create(1, 2)
    apply_fault(battery, Fault(FaultKind.PORT_DISABLED, port=1))
    assert not battery.ports[0].enabled and battery.port_status(0) == DC_OFF
    clear_fault(battery, Fault(FaultKind.PORT_DISABLED, port=1))
    assert battery.ports[0].enabled


@pytest.mark.parametrize(
    ("fault", "field", "on", "off"),
    [
        (Fault(FaultKind.SILENT), "silent", True, False),
        (Fault(FaultKind.GARBAGE), "garbage", True, False),
        (Fault(FaultKind.SLOW, delay_ms=250), "delay_s", 0.25, 0.0),
    ],
)
def test_line_faults(fault: Fault, field: str, on: object, off: object) -> None:
    battery = SimBattery.create(1, 2)
    apply_fault(battery, fault)
    assert getattr(battery.link, field) == on
    clear_fault(battery, fault)
    assert getattr(battery.link, field) == off


@pytest.mark.parametrize(
    "fault",
    [
        Fault(FaultKind.PORT_FAULT, port=9, error=PortError.OVER_CURRENT),
        Fault(FaultKind.PORT_FAULT, port=1),
        Fault(FaultKind.PORT_FAULT, port=1, error=PortError.NONE),
        Fault(FaultKind.PORT_DISABLED),
        Fault(FaultKind.SLOW),
    ],
)
def test_faults_that_do_not_fit_are_refused(fault: Fault) -> None:
    battery = SimBattery.create(1, 2)
    with pytest.raises(FaultError):
        apply_fault(battery, fault)
    assert battery.registers() == SimBattery.create(1, 2).registers()
