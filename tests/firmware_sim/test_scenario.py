"""Scenario files: the shipped ones load, a typo is named by its path."""

from __future__ import annotations

import pytest

from firmware_sim.errors import ScenarioError
from firmware_sim.fleet import build_fleet
from firmware_sim.scenario import SHIPPED, load_scenario, parse_scenario


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenarios_load(name: str) -> None:
    scenario = load_scenario(name)
    assert build_fleet(scenario).units


def test_typhoon_night_is_twelve_shelters_of_two_eight_port_batteries() -> None:
    scenario = load_scenario("typhoon-night")
    buses = [*scenario.line, *scenario.tcp]
    assert len(buses) == 12 and all(len(bus.units) == 2 for bus in buses)
    fleet = build_fleet(scenario)
    assert len(fleet.units) == 24
    assert {len(unit.battery.ports) for unit in fleet.units.values()} == {8}


def test_unit_settings_fall_back_to_defaults() -> None:
    scenario = parse_scenario(
        """
        [defaults]
        ports = 4
        soc_pct = 50
        [[line]]
        name = "a"
        units = [1, { unit_id = 2, ports = 6, vendor_model = false }]
        """
    )
    fleet = build_fleet(scenario)
    one, two = fleet.unit("a", 1).battery, fleet.unit("a", 2).battery
    assert len(one.ports) == 4 and one.soc_pct == 50 and one.vendor_model
    assert len(two.ports) == 6 and not two.vendor_model


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[[line]]\nname = "a"\nunits = [{ unit_id = 1, prots = 4 }]', "line[0].units[0].prots"),
        ('[[line]]\nname = "a"\nbaud = 9600\nunits = [1]', "line[0].baud"),
        ('[[tcp]]\nname = "a"\nport = 70000\nunits = [1]', "tcp[0].port"),
        ("spede = 3", "spede"),
    ],
)
def test_errors_name_the_bad_key(text: str, key: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text)
    assert caught.value.key == key


def test_faults_must_point_at_a_unit_that_exists() -> None:
    text = '[[line]]\nname = "a"\nunits = [1]\n[[fault]]\nat_s = 1\nline = "a"\nunit_id = 2\n'
    with pytest.raises(ScenarioError, match="no unit 2"):
        parse_scenario(text + 'kind = "silent"')


def test_line_names_are_unique_and_topic_safe() -> None:
    with pytest.raises(ScenarioError, match="twice"):
        parse_scenario('[[line]]\nname = "a"\nunits = [1]\n[[tcp]]\nname = "a"\nunits = [1]')
    with pytest.raises(ScenarioError, match="must match"):
        parse_scenario('[[line]]\nname = "a.b"\nunits = [1]')
