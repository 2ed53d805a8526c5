"""docker-compose.scale.yml and the nginx front agree with the code and with each other:
three server processes with their own client ids in one shared group, nginx spreading the
HTTP over exactly them, server-sent events unbuffered, and the config nginx itself accepts."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.api.body_limit import MAX_BODY
from server.settings import Settings
from tests.test_deployment import ROOT, mounts

UPSTREAM = "/etc/nginx/chargenet-upstream.conf"


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


@pytest.fixture(scope="module")
def scale() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.scale.yml").read_text())
    return loaded


def servers(scale: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Each server process's environment as the override sets it."""
    return {
        name: service["environment"]
        for name, service in scale["services"].items()
        if name == "server" or service.get("extends", {}).get("service") == "server"
    }


def upstreams(conf: str) -> list[tuple[str, int]]:
    return [
        (host, int(port)) for host, port in re.findall(r"^\s*server ([\w-]+):(\d+)", conf, re.M)
    ]


def test_three_processes_each_with_its_own_client_id_in_one_group(
    scale: dict[str, Any],
) -> None:
    found = servers(scale)
    assert set(found) == {"server", "server-2", "server-3"}
    fields = {f"CHARGENET_{name.upper()}" for name in Settings.model_fields}
    assert all(set(env) <= fields for env in found.values())
    ids = [env["CHARGENET_MQTT_CLIENT_ID"] for env in found.values()]
    assert len(set(ids)) == 3
    assert {env["CHARGENET_MQTT_SHARED_GROUP"] for env in found.values()} == {"chargenet-servers"}
    for name, service in scale["services"].items():
        if name in found and name != "server":
            assert service["extends"]["file"] == "docker-compose.yml"
            assert set(service["depends_on"]) == {"postgres", "mosquitto"}


def test_nginx_spreads_over_exactly_the_server_processes(
    base: dict[str, Any], scale: dict[str, Any]
) -> None:
    server = base["services"]["server"]
    port = int(server["command"][server["command"].index("--port") + 1])
    alone = mounts(base["services"]["proxy"])[UPSTREAM].read_text()
    assert upstreams(alone) == [("server", port)]
    scaled = mounts(scale["services"]["proxy"])[UPSTREAM].read_text()
    assert sorted(upstreams(scaled)) == sorted((name, port) for name in servers(scale))
    assert scale["services"]["intake"]["environment"]["CHARGENET_INTAKE_SERVER_URL"] == (
        f"http://proxy:{base['services']['proxy']['ports'][0].split(':')[0]}"
    )


def test_events_pass_unbuffered_and_bodies_are_bounded_as_the_server_bounds_them(
    base: dict[str, Any],
) -> None:
    conf = mounts(base["services"]["proxy"])["/etc/nginx/conf.d/default.conf"].read_text()
    events = re.search(r"location = /api/v1/events \{(.*?)\}", conf, re.S)
    assert events is not None and "proxy_buffering off;" in events.group(1)
    limit = re.search(r"client_max_body_size (\d+)m;", conf)
    assert limit is not None and int(limit.group(1)) * 1_000_000 >= MAX_BODY


def test_nginx_accepts_the_shipped_config(base: dict[str, Any], tmp_path: Path) -> None:
    """`nginx -t` on the shipped server block, with an upstream file naming local
    addresses instead (the compose service names resolve only inside Compose)."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise RuntimeError("nginx is not installed (apt-get install nginx-light); tests need it")
    site = mounts(base["services"]["proxy"])["/etc/nginx/conf.d/default.conf"].read_text()
    upstream = tmp_path / "chargenet-upstream.conf"
    shipped = mounts(base["services"]["proxy"])[UPSTREAM].read_text()
    upstream.write_text(re.sub(r"server [\w-]+:(\d+)", r"server 127.0.0.1:\1", shipped))
    (tmp_path / "site.conf").write_text(site.replace(UPSTREAM, str(upstream)))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{\n  access_log off;\n  include {tmp_path}/site.conf;\n}}\n"
    )
    command = [binary, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    checked = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr
