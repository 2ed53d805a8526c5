import asyncio

import pytest

from gateway.discovery import RegisterImage, discover
from gateway.snapshot import UnitReading, decode_unit, port_error, port_status
from protocol.payloads import PortError, PortStatus
from protocol.sunspec import DC_ALARM_BITS
from tests.gateway.registers import FakeLink, FakeUnit, dc_port, vendor_port


def read(unit: FakeUnit) -> UnitReading:
    link = FakeLink({1: unit})
    layout = asyncio.run(discover(link, "bus", 1))
    reads = [(a, asyncio.run(link.read(1, a, n))) for a, n in layout.reads]
    return decode_unit(layout, RegisterImage(reads))


def test_battery_values_are_scaled() -> None:
    reading = read(FakeUnit([dc_port()], [vendor_port()], battery={"Evt1": 0b10}))
    battery = reading.battery
    assert battery.soc_pct == 81.5
    assert battery.voltage_v == 51.2
    assert battery.current_a == -3.1
    assert battery.power_w == -158.7
    assert battery.rated_wh == 2000
    assert battery.temp_c == 31.4
    assert battery.state == "connected"
    assert battery.alarms == ["over_temp_alarm"]
    assert battery.soh_pct == 97.0


def test_ports_with_the_vendor_model() -> None:
    over_current = 1 << DC_ALARM_BITS["INPUT_OVER_CURRENT"]
    reading = read(
        FakeUnit(
            [
                dc_port(18.2, status=1, energy_wh=3.1),
                dc_port(0.1, status=0),
                dc_port(0.0, status=0),
                dc_port(0.0, status=3, alarm=over_current),
                dc_port(0.0, status=0),
            ],
            [
                vendor_port(occupied=True, code="K7Q2"),
                vendor_port(occupied=True),
                vendor_port(),
                vendor_port(occupied=True),
                vendor_port(enabled=False),
            ],
        )
    )
    statuses = [p.status for p in reading.ports]
    assert statuses == [
        PortStatus.CHARGING,
        PortStatus.FINISHING,
        PortStatus.AVAILABLE,
        PortStatus.FAULTED,
        PortStatus.UNAVAILABLE,
    ]
    first = reading.ports[0]
    assert (first.power_w, first.energy_wh, first.temp_c) == (18.2, 3.1, 30.2)
    assert first.display_code == "K7Q2"
    assert reading.ports[3].error == PortError.OVER_CURRENT
    assert reading.ports[2].display_code is None


def test_plain_sunspec_battery_maps_dcsta_and_leaves_vendor_fields_null() -> None:
    over_temp = 1 << DC_ALARM_BITS["OVER_TEMP"]
    reading = read(
        FakeUnit(
            [
                dc_port(0.0, status=0),
                dc_port(10.0, status=1),
                dc_port(9.0, status=2, alarm=over_temp),
                dc_port(0.0, status=3, alarm=1 << DC_ALARM_BITS["GROUND_FAULT"]),
            ],
            None,
        )
    )
    assert [p.status for p in reading.ports] == [
        PortStatus.AVAILABLE,
        PortStatus.CHARGING,
        PortStatus.CHARGING,
        PortStatus.FAULTED,
    ]
    assert reading.ports[2].error == PortError.HIGH_TEMPERATURE
    assert reading.ports[3].error == PortError.OTHER
    assert reading.ports[3].vendor_code == 1 << DC_ALARM_BITS["GROUND_FAULT"]
    assert all(p.occupied is None and p.enabled is None for p in reading.ports)
    assert all(p.display_code is None and p.session_s is None for p in reading.ports)
    assert reading.battery.temp_c is None


@pytest.mark.parametrize(
    ("bit", "error"),
    [
        ("INPUT_OVER_CURRENT", PortError.OVER_CURRENT),
        ("OVER_TEMP", PortError.HIGH_TEMPERATURE),
        ("INPUT_OVER_VOLTAGE", PortError.OVER_VOLTAGE),
        ("INPUT_UNDER_VOLTAGE", PortError.UNDER_VOLTAGE),
        ("DC_DISCONNECT", PortError.POWER_SWITCH_FAILURE),
        ("TEST_FAILED", PortError.INTERNAL_ERROR),
        ("BLOWN_FUSE", PortError.OTHER),
    ],
)
def test_alarm_bits_to_error_codes(bit: str, error: PortError) -> None:
    assert port_error(1 << DC_ALARM_BITS[bit])[0] == error


def test_disabled_wins_over_everything() -> None:
    assert port_status("ERROR", True, False, 10.0) == PortStatus.UNAVAILABLE
    assert port_status("ON", True, True, 10.0) == PortStatus.CHARGING
    assert port_error(0) == (PortError.NONE, None)
