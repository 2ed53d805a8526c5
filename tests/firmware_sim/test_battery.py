"""The register image a battery renders, and the writes it accepts."""

from __future__ import annotations

import pytest

from firmware_sim.battery import (
    DC_ERROR,
    DC_OFF,
    DC_ON,
    DC_WARNING,
    SCALE,
    STATE_CONNECTED,
    Phone,
    SimBattery,
)
from firmware_sim.errors import IllegalAddress, IllegalValue
from protocol.payloads import PortError
from protocol.sunspec import BATTERY, BATTERY_EVT1, DC_ALARM_BITS, SUNS_BASE, SUNS_MARKER, scaled
from protocol.vendor_model import VENDOR
from tests.firmware_sim.running import walk


def busy_battery() -> SimBattery:
    battery = SimBattery.create(3, 4, soc_pct=81.5, temp_c=31.4)
    battery.ports[0].phone = Phone(need_wh=5.0, max_w=18.0, stay_full_s=600)
    battery.ports[0].power_w = 12.34
    battery.ports[0].energy_wh = 3.125
    battery.ports[0].session_s = 95
    battery.ports[2].display_code = "K7Q2"
    return battery


def test_image_round_trips_through_decode_model() -> None:
    battery = busy_battery()
    models = walk(battery.registers())
    assert list(models) == [1, 802, 714, 64900]
    common = models[1][1].fixed
    assert common["Mn"] == "chargenet" and common["SN"] == "CN-SIM-003"
    bat = models[802][1].fixed
    assert scaled(bat["SoC"], bat["SoC_SF"]) == pytest.approx(81.5)
    assert scaled(bat["WHRtg"], bat["WHRtg_SF"]) == 2000
    assert bat["State"] == STATE_CONNECTED
    assert scaled(bat["V"], bat["V_SF"]) == pytest.approx(battery.voltage_v, abs=0.05)
    assert scaled(bat["W"], bat["W_SF"]) == pytest.approx(-battery.load_w, abs=0.5)
    assert bat["DisChaRte"] is None  # unimplemented points stay sentinels
    dc = models[714][1]
    assert dc.fixed["NPrt"] == 4 and len(dc.groups) == 4
    port1 = dc.groups[0]
    assert scaled(port1["DCW"], dc.fixed["DCW_SF"]) == pytest.approx(12.34)
    assert scaled(port1["DCWhInj"], dc.fixed["DCWH_SF"]) == pytest.approx(3.125)
    assert port1["DCSta"] == DC_ON and dc.groups[1]["DCSta"] == DC_OFF
    vendor = models[64900][1]
    assert scaled(vendor.fixed["BatTmp"], vendor.fixed["Tmp_SF"]) == pytest.approx(31.4)
    assert [g["Occ"] for g in vendor.groups] == [1, 0, 0, 0]
    assert vendor.groups[2]["Code"] == "K7Q2"
    assert vendor.groups[0]["SesS"] == 95
    assert len(battery.registers()) == battery.register_count


def test_scale_factors_are_reported() -> None:
    models = walk(SimBattery.create(1, 2).registers())
    bat, dc = models[802][1].fixed, models[714][1].fixed
    for name in ("SoC_SF", "V_SF", "A_SF", "W_SF"):
        assert bat[name] == SCALE[name]
    for name in ("DCA_SF", "DCV_SF", "DCW_SF", "DCWH_SF", "Tmp_SF"):
        assert dc[name] == SCALE[name]


def test_plain_sunspec_battery_has_no_vendor_model() -> None:
    battery = SimBattery.create(1, 8, vendor_model=False)
    assert list(walk(battery.registers())) == [1, 802, 714]
    with pytest.raises(IllegalAddress):
        battery.read(SUNS_BASE + battery.register_count, 1)


def vendor_address(battery: SimBattery, point: str, port: int) -> int:
    start, _ = walk(battery.registers())[64900]
    return start + 2 + VENDOR.offset(point, port)


def test_enable_and_display_code_writes() -> None:
    battery = busy_battery()
    battery.write(vendor_address(battery, "Ena", 1), [0])
    assert battery.ports[1].enabled is False
    code = vendor_address(battery, "Code", 3)
    battery.write(code, [0x4142, 0x4344, 0, 0])
    assert battery.ports[3].display_code == "ABCD"
    battery.write(code + 1, [0x3132])  # one register of the code
    assert battery.ports[3].display_code == "AB12"
    assert walk(battery.registers())[64900][1].groups[3]["Code"] == "AB12"


def test_bad_values_are_refused_and_nothing_is_written() -> None:
    battery = busy_battery()
    with pytest.raises(IllegalValue):
        battery.write(vendor_address(battery, "Ena", 0), [2])
    with pytest.raises(IllegalValue):
        battery.write(vendor_address(battery, "Code", 0), [0xC3A9, 0, 0, 0])
    assert battery.ports[0].enabled and battery.ports[0].display_code == ""


@pytest.mark.parametrize("name", ["SoC", "Hb", "State", "V"])
def test_non_writable_points_are_illegal_addresses(name: str) -> None:
    battery = busy_battery()
    start, _ = walk(battery.registers())[802]
    with pytest.raises(IllegalAddress):
        battery.write(start + 2 + BATTERY.offset(name), [1])


def test_a_write_straddling_a_read_only_register_is_refused() -> None:
    battery = busy_battery()
    ena = vendor_address(battery, "Ena", 0)
    with pytest.raises(IllegalAddress):
        battery.write(ena - 1, [0, 0])  # Occ then Ena
    assert battery.ports[0].enabled


def test_port_status_semantics() -> None:
    battery = busy_battery()
    battery.ports[1].power_w = 10.0
    battery.ports[1].enabled = False
    battery.ports[2].fault = PortError.OVER_CURRENT
    battery.ports[2].power_w = 5.0
    battery.temp_override_c = 50.0
    dc = walk(battery.registers())[714][1]
    assert [g["DCSta"] for g in dc.groups] == [DC_WARNING, DC_OFF, DC_ERROR, DC_OFF]
    assert dc.groups[2]["DCAlrm"] == 1 << DC_ALARM_BITS["INPUT_OVER_CURRENT"]
    assert dc.groups[2]["DCW"] == 0 and dc.groups[1]["DCW"] == 0
    assert dc.fixed["PrtAlrms"] == dc.groups[2]["DCAlrm"]


def test_other_error_maps_to_ground_fault() -> None:
    battery = busy_battery()
    battery.ports[0].fault = PortError.OTHER
    assert battery.port_alarms(0) == 1 << DC_ALARM_BITS["GROUND_FAULT"]


def test_alarm_reset_clears_only_what_is_no_longer_active() -> None:
    battery = busy_battery()
    start, _ = walk(battery.registers())[802]
    alm_rst = start + 2 + BATTERY.offset("AlmRst")
    battery.ports[0].fault = PortError.OVER_VOLTAGE
    battery.ports[1].fault = PortError.INTERNAL_ERROR
    battery.temp_override_c = 70.0
    battery.registers()
    battery.ports[0].fault = None
    battery.temp_override_c = None
    assert battery.port_status(0) == DC_ERROR  # latched
    assert battery.evt1() & 1 << BATTERY_EVT1.index("over_temp_alarm")
    battery.write(alm_rst, [1])
    assert battery.port_status(0) != DC_ERROR
    assert battery.port_status(1) == DC_ERROR  # still active
    assert battery.evt1() == 0


def test_without_latching_a_cleared_fault_disappears_at_once() -> None:
    battery = SimBattery.create(1, 2, latch_alarms=False)
    battery.ports[0].fault = PortError.OVER_CURRENT
    assert battery.port_status(0) == DC_ERROR
    battery.ports[0].fault = None
    assert battery.port_status(0) == DC_OFF


def test_low_soc_raises_warning() -> None:
    battery = SimBattery.create(1, 2, soc_pct=12.0)
    assert battery.evt1() == 1 << BATTERY_EVT1.index("under_soc_min_warning")


def test_reads_outside_the_map_are_illegal() -> None:
    battery = busy_battery()
    assert battery.read(SUNS_BASE, 2) == list(SUNS_MARKER)
    with pytest.raises(IllegalAddress):
        battery.read(SUNS_BASE - 1, 2)
    with pytest.raises(IllegalAddress):
        battery.read(SUNS_BASE + battery.register_count - 1, 2)
