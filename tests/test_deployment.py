"""docker-compose.yml cannot be started here (no Docker engine), so check that it agrees with
the code: services, ports, environment names, mounted files and the configs they carry."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from firmware_sim.scenario import load_scenario
from gateway.config import TcpBus, load_config
from server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host file, for bind mounts of files in the repository."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            found[target] = ROOT / source[2:]
    return found


def test_the_services_are_all_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "mosquitto",
        "postgres",
        "proxy",
        "server",
        "intake",
        "gateway",
        "simulator",
    }


def test_every_mounted_file_exists_except_the_operator_made_password_file(
    compose: dict[str, Any],
) -> None:
    for service in compose["services"].values():
        for target, source in mounts(service).items():
            assert source.exists() or target.endswith("/passwd"), source


def test_server_environment_names_are_settings(compose: dict[str, Any]) -> None:
    server = compose["services"]["server"]
    fields = {f"CHARGENET_{name.upper()}" for name in Settings.model_fields}
    assert set(server["environment"]) <= fields
    url = server["environment"]["CHARGENET_DATABASE_URL"]
    assert url.startswith("postgresql+asyncpg://") and "@postgres:5432/" in url
    assert server["environment"]["CHARGENET_MQTT_URL"] == "mqtt://mosquitto:1883"
    port = server["command"][server["command"].index("--port") + 1]
    assert server["expose"] == [port] and "ports" not in server  # reached through the proxy


def test_the_intake_hands_on_to_the_server_with_the_same_secret(compose: dict[str, Any]) -> None:
    intake, server = compose["services"]["intake"], compose["services"]["server"]
    fields = {f"CHARGENET_{name.upper()}" for name in Settings.model_fields}
    assert set(intake["environment"]) <= fields
    server_port = server["command"][server["command"].index("--port") + 1]
    assert intake["environment"]["CHARGENET_INTAKE_SERVER_URL"] == f"http://server:{server_port}"
    secret = "CHARGENET_LINE_CHANNEL_SECRET"
    assert intake["environment"][secret] == server["environment"][secret]
    assert intake["environment"][secret].startswith("${LINE_CHANNEL_SECRET:?")
    port = intake["command"][intake["command"].index("--port") + 1]
    assert f"{port}:{port}" in intake["ports"]
    journal = Path(intake["environment"]["CHARGENET_INTAKE_JOURNAL"])
    volumes = {v.split(":")[1]: v.split(":")[0] for v in intake["volumes"]}
    assert str(journal.parent) in volumes and volumes[str(journal.parent)] in compose["volumes"]


def test_gateway_config_is_valid_and_points_at_the_compose_services(
    compose: dict[str, Any],
) -> None:
    gateway = compose["services"]["gateway"]
    config_path = mounts(gateway)[gateway["command"][gateway["command"].index("--config") + 1]]
    config = load_config(config_path)
    [broker] = config.mqtt.endpoints
    assert (broker.host, broker.port) == ("mosquitto", 1883)
    scenario_service = compose["services"]["simulator"]
    scenario_file = mounts(scenario_service)[
        scenario_service["command"][scenario_service["command"].index("--scenario") + 1]
    ]
    scenario = load_scenario(str(scenario_file))
    endpoints = {(t.port, tuple(u.unit_id for u in t.units)) for t in scenario.tcp}
    for bus in config.bus:
        assert isinstance(bus, TcpBus) and bus.host == "simulator"
        assert (bus.port, tuple(bus.units)) in endpoints


def test_broker_config_matches_the_acl_and_the_gateway_username(compose: dict[str, Any]) -> None:
    mosquitto = mounts(compose["services"]["mosquitto"])
    conf = mosquitto["/mosquitto/config/mosquitto.conf"].read_text()
    assert "acl_file /mosquitto/config/acl" in conf
    assert "password_file /mosquitto/config/passwd" in conf
    assert re.search(r"^listener 1883$", conf, re.M)
    acl = mosquitto["/mosquitto/config/acl"].read_text()
    server_env = compose["services"]["server"]["environment"]
    assert f"user {server_env['CHARGENET_MQTT_USERNAME']}" in acl
    gateway = compose["services"]["gateway"]
    config = load_config(mounts(gateway)["/config/gateway.toml"])
    assert config.mqtt.username == config.gateway_id  # the ACL's %u patterns rely on it


def test_the_gateway_outbox_is_on_its_volume(compose: dict[str, Any]) -> None:
    """The outbox must outlive the container: the TOML's store_path is on a named volume."""
    gateway = compose["services"]["gateway"]
    config = load_config(mounts(gateway)["/config/gateway.toml"])
    volumes = {v.split(":")[1]: v.split(":")[0] for v in gateway["volumes"]}
    assert volumes[str(config.store_path.parent)] in compose["volumes"]
