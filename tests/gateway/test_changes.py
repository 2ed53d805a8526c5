from gateway.changes import is_significant, unit_events
from gateway.snapshot import UnitReading
from protocol.payloads import BatteryState, EventKind, PortError, PortState, PortStatus


def battery(**changes: object) -> BatteryState:
    base = BatteryState(
        soc_pct=80.0, soh_pct=97.0, voltage_v=51.2, current_a=-3.0, power_w=-150.0,
        temp_c=30.0, rated_wh=2000.0, state="connected", alarms=[],
    )  # fmt: skip
    return base.model_copy(update=changes)


def port(number: int = 1, **changes: object) -> PortState:
    base = PortState(
        port=number, status=PortStatus.CHARGING, occupied=True, enabled=True, power_w=15.0,
        energy_wh=1.0, temp_c=30.0,
    )  # fmt: skip
    return base.model_copy(update=changes)


def reading(b: BatteryState | None = None, *ports: PortState) -> UnitReading:
    return UnitReading(b or battery(), list(ports) or [port()])


def test_jitter_is_not_a_change() -> None:
    before = reading(battery(), port())
    after = reading(battery(soc_pct=79.6, power_w=-160.0, temp_c=30.5), port(power_w=14.2))
    assert not is_significant(before, after)
    assert unit_events(before, after) == []


def test_what_people_act_on_is_a_change() -> None:
    before = reading()
    assert is_significant(None, before)
    assert is_significant(before, reading(battery(soc_pct=78.9)))
    assert is_significant(before, reading(None, port(status=PortStatus.FINISHING)))
    assert is_significant(before, reading(None, port(display_code="K7Q2")))
    assert is_significant(before, reading(None, port(enabled=False)))
    assert is_significant(before, reading(battery(alarms=["over_temp_alarm"])))


def test_alarm_edges() -> None:
    quiet = reading()
    hot = reading(battery(alarms=["over_temp_alarm"]))
    raised = unit_events(quiet, hot)
    assert [(e.kind, e.alarm) for e in raised] == [(EventKind.ALARM_RAISED, "over_temp_alarm")]
    cleared = unit_events(hot, quiet)
    assert [(e.kind, e.alarm) for e in cleared] == [(EventKind.ALARM_CLEARED, "over_temp_alarm")]
    assert unit_events(hot, hot) == []


def test_port_fault_edges_carry_the_error() -> None:
    ok = reading(None, port(1), port(2))
    faulted = reading(
        None, port(1), port(2, status=PortStatus.FAULTED, error=PortError.OVER_CURRENT)
    )
    events = unit_events(ok, faulted)
    assert [(e.kind, e.port, e.error) for e in events] == [
        (EventKind.PORT_FAULTED, 2, PortError.OVER_CURRENT)
    ]
    assert unit_events(faulted, faulted) == []
    assert [e.kind for e in unit_events(faulted, ok)] == [EventKind.PORT_RECOVERED]


def test_warning_on_a_working_port_is_a_port_alarm() -> None:
    ok = reading()
    hot = reading(None, port(error=PortError.HIGH_TEMPERATURE))
    events = unit_events(ok, hot)
    assert [(e.kind, e.port, e.alarm) for e in events] == [
        (EventKind.ALARM_RAISED, 1, "port_high_temperature")
    ]
    assert [e.kind for e in unit_events(hot, ok)] == [EventKind.ALARM_CLEARED]


def test_first_reading_reports_what_is_already_active() -> None:
    active = reading(
        battery(alarms=["under_soc_min_warning"]),
        port(1, status=PortStatus.FAULTED, error=PortError.OTHER),
    )
    kinds = sorted(e.kind for e in unit_events(None, active))
    assert kinds == [EventKind.ALARM_RAISED, EventKind.PORT_FAULTED]
