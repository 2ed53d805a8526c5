"""`chargenet demo`: the whole system on one machine, as the separate processes it really is.

Broker (Mosquitto-compatible embedded amqtt unless `--mqtt` names one), the battery
simulator on pseudo-terminal serial lines and TCP, a gateway configured from what the
simulator reports, and the server (SQLite in the data folder, MQTT ingest from the same
broker, the demo registry of shelters mapped to the gateway's batteries) with its
dashboard on a printed URL, `chargenet intake` taking LINE's webhook in front of it, and
the sandbox standing in for LINE and LINE WORKS, whose resident chat and crew channels
are played in the browser. `--console` adds a live console
view of the broker. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import secrets
import selectors
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from chargenet import platforms
from protocol.topics import DEFAULT_PREFIX

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 20.0
SERVER_STARTUP_TIMEOUT_S = 90.0
"""The server migrates and imports the platforms' SDKs first: on a busy small machine that
has taken over 40 s."""
DEMO_GATEWAY = "demo-gw"
"""The gateway id the demo registry maps its batteries under."""


def gateway_config_toml(
    gw_id: str, mqtt_url: str, sim: dict[str, Any], store_path: Path, report_period_s: float
) -> str:
    """A gateway config for every line and TCP endpoint the simulator announced."""
    lines = [
        f'gateway_id = "{gw_id}"',
        f'store_path = "{store_path}"',
        f"report_period_s = {report_period_s}",
        "poll_period_s = 1.0",
        "",
        "[mqtt]",
        f'url = "{mqtt_url}"',
        "reconnect_max_s = 5",
    ]
    for name, line in sim.get("serial", {}).items():
        lines += [
            "", "[[bus]]", f'name = "{name}"', 'kind = "rtu"', f'port = "{line["device"]}"',
            f"baudrate = {line['baudrate']}", f'parity = "{line["parity"]}"',
            f"stopbits = {line['stopbits']}", f"units = {list(line['units'])}",
        ]  # fmt: skip
    for name, endpoint in sim.get("tcp", {}).items():
        lines += [
            "", "[[bus]]", f'name = "{name}"', 'kind = "tcp"', f'host = "{endpoint["host"]}"',
            f"port = {endpoint['port']}", f"units = {list(endpoint['units'])}",
        ]  # fmt: skip
    return "\n".join(lines) + "\n"


class Interrupts:
    """SIGINT and SIGTERM as KeyboardInterrupt, except inside `held()`: there they wait.

    An interrupt raised between starting a child and recording it would orphan the child
    (the stop could not know of it), and one inside a database step could leave a worker
    thread that keeps the process from exiting. Those steps run held, and a signal that
    arrives meanwhile takes effect as soon as they end.
    """

    def __init__(self) -> None:
        self._depth = 0
        self._pending = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, _signum: int, _frame: object) -> None:
        if self._depth:
            self._pending = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth and self._pending:
                self._pending = False
                raise KeyboardInterrupt


INTERRUPTS = Interrupts()


class Processes:
    """Child processes started in order and stopped in reverse, gently then firmly."""

    def __init__(self) -> None:
        self._children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "chargenet", *args]
        with INTERRUPTS.held():  # started means recorded, so the stop will find it
            child = subprocess.Popen(command, **kwargs)
            self._children.append((name, child))
        return child

    def check(self) -> None:
        for name, child in self._children:
            if child.poll() is not None:
                raise RuntimeError(f"{name} exited with {child.returncode}")

    def stop_all(self) -> None:
        for name, child in reversed(self._children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop, killing it", name)
                child.kill()
                child.wait()


def read_announcement(child: subprocess.Popen[bytes], timeout_s: float) -> dict[str, Any]:
    """The simulator's one JSON line on stdout, within `timeout_s`."""
    assert child.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            raise RuntimeError(f"the simulator said nothing within {timeout_s}s")
    line = child.stdout.readline()
    if not line:
        raise RuntimeError("the simulator exited before announcing its lines")
    announced: dict[str, Any] = json.loads(line)
    return announced


def wait_for_port(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection((host, port), timeout=0.2).close()
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout_s}s")


FREE_PORTS_FROM = 10_000
FREE_PORT_TRIES = 200


def free_port() -> int:
    """A port nothing listens on, for a child to bind: below the kernel's range for
    outgoing connections. One from that range (what binding port 0 gives) may be taken by
    any process's outgoing connection before the child binds it."""
    below = _outgoing_ports_start()
    for _ in range(FREE_PORT_TRIES):
        port = random.randint(FREE_PORTS_FROM, below - 1)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {FREE_PORTS_FROM}..{below - 1}")


def _outgoing_ports_start() -> int:
    """The first port Linux gives outgoing connections (32768 elsewhere, as its default)."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return max(FREE_PORTS_FROM + 1000, int(text.split()[0]))
    except (OSError, ValueError, IndexError):
        return 32_768


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chargenet demo", description=__doc__)
    parser.add_argument("--mqtt", help="use this broker (mqtt://host:port) instead of starting one")
    parser.add_argument("--scenario", default="demo", help="simulator scenario name or file")
    parser.add_argument("--data-dir", type=Path, default=Path("demo-data"))
    parser.add_argument("--report-period", type=float, default=10.0)
    parser.add_argument("--http-port", type=int, help="the server's port (default 8000 if free)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the server's address; 0.0.0.0 to open the dashboard from a phone on this network",
    )
    parser.add_argument("--console", action="store_true", help="also show a live console view")
    parser.add_argument("--exit-after", type=float, help="stop by itself after this many seconds")
    args = parser.parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    # SIGTERM, and SIGINT even when a shell started us with it ignored, stop everything
    # the way Ctrl-C does, at any point of start-up too: no part is left orphaned.
    INTERRUPTS.install()
    children = Processes()
    try:
        mqtt_url = args.mqtt or _start_broker(children)
        sim = children.start(
            "simulator", ["sim", "--scenario", args.scenario], stdout=subprocess.PIPE
        )
        announced = read_announcement(sim, STARTUP_TIMEOUT_S)
        config = args.data_dir / "gateway.toml"
        health = f"127.0.0.1:{free_port()}"
        config.write_text(
            f'health_listen = "{health}"\n' + gateway_config_toml(
                DEMO_GATEWAY, mqtt_url, announced, (args.data_dir / "outbox.db").resolve(),
                args.report_period,
            )
        )  # fmt: skip
        children.start("gateway", ["gateway", "--config", str(config)])
        server, sandbox = _start_server(children, args, mqtt_url)
        elsewhere = "".join(f"dashboard from a phone {url}/\n" for url in server.other_urls)
        print(
            f"dashboard {server.url}/\n{elsewhere}public page (residents) {server.url}/public\n"
            f"API docs {server.url}/docs\n"
            f"resident chat (LINE sandbox) {sandbox.chat_url}\n"
            f"LINE webhook (chargenet intake) {sandbox.webhook_url}\n"
            f"crew channels (LINE WORKS sandbox) {sandbox.crew_url}\n"
            f"admin token {server.admin_token}\n"
            f"broker {mqtt_url}\nsimulator control API {announced.get('control')}\n"
            f"gateway config {config}\ngateway health http://{health}/healthz\n"
            f"inject a fault: {chargenet_command()} sim fault --control "
            f"{announced.get('control')} --line rs485-1 --unit 2 port_fault --port 1 "
            "--error over_current\n"
            f"run a drill (訓練): {chargenet_command()} drill --server {server.url} --token "
            f"{server.admin_token} start --scenario typhoon-night --municipality 大洲市 "
            f"--mqtt {mqtt_url} --data-dir {args.data_dir / 'drill'}\n",
            flush=True,
        )
        asyncio.run(_run(mqtt_url, children, args.exit_after, args.console))
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        print(f"chargenet demo: {exc}", file=sys.stderr)
        return 1
    finally:
        children.stop_all()
    return 0


def chargenet_command() -> str:
    """`chargenet` as a shell runs it without the venv active: the script beside this
    Python (a venv's bin), else the one on PATH, else this Python with `-m chargenet`."""
    beside = Path(sys.executable).parent / "chargenet"
    found = str(beside) if os.access(beside, os.X_OK) else shutil.which("chargenet")
    return shlex.quote(found) if found else f"{shlex.quote(sys.executable)} -m chargenet"


def local_address(host: str) -> str:
    """Where this machine reaches a server listening on `host` (a wildcard: loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def network_addresses() -> list[str]:
    """This machine's IPv4 address on its default route, as a phone on that network sees
    it; none without a route. A UDP connect picks the route and sends nothing."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 9))  # any routed address: nothing is sent
        except OSError:
            return []
        address: str = probe.getsockname()[0]
    return [] if address.startswith("127.") or address == "0.0.0.0" else [address]


def http_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class DemoServer:
    """Where the demo's server listens, the URLs that reach it and its admin token."""

    def __init__(self, host: str, port: int, admin_token: str) -> None:
        self.url = http_url(local_address(host), port)
        wildcard = local_address(host) != host
        self.other_urls = [http_url(a, port) for a in network_addresses()] if wildcard else []
        self.admin_token = admin_token


def _start_server(
    children: Processes, args: argparse.Namespace, mqtt_url: str
) -> tuple[DemoServer, platforms.DemoPlatforms]:
    """The LINE and LINE WORKS sandbox, then `chargenet server` on SQLite in the data
    folder, pointed at it; then the demo registry goes in."""
    port = args.http_port or _port_or_free(
        args.host, int(os.environ.get("CHARGENET_DEMO_HTTP_PORT", 8000))
    )
    reach = local_address(args.host)
    intake_port = free_port()
    sandbox = platforms.prepare(
        args.data_dir, args.host, free_port(), http_url(reach, port), reach,
        webhook_url=f"{http_url(reach, intake_port)}/line/webhook",
    )  # fmt: skip
    children.start("sandbox", ["sandbox", "--config", str(sandbox.config_path)])
    database_url = f"sqlite+aiosqlite:///{(args.data_dir / 'chargenet.sqlite3').resolve()}"
    token = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        **sandbox.server_env,
        "CHARGENET_DATABASE_URL": database_url,
        "CHARGENET_MQTT_URL": mqtt_url,
        "CHARGENET_ADMIN_TOKEN": token,
        "CHARGENET_REPORT_PERIOD_S": str(args.report_period),
        # bookings move two report periods after a fault, so the demo shows it soon
        "CHARGENET_MOVE_GRACE_S": os.environ.get(
            "CHARGENET_MOVE_GRACE_S", str(2 * args.report_period)
        ),
    }
    children.start("server", ["server", "--host", args.host, "--port", str(port)], env=env)
    children.start("intake", ["intake", "--host", reach, "--port", str(intake_port)], env={
        **env, "CHARGENET_INTAKE_SERVER_URL": http_url(reach, port),
        "CHARGENET_INTAKE_JOURNAL": str(args.data_dir / "line-intake.sqlite3"),
    })  # fmt: skip
    wait_for_port(reach, port, SERVER_STARTUP_TIMEOUT_S)
    wait_for_port(reach, intake_port, STARTUP_TIMEOUT_S)
    wait_for_port(reach, int(sandbox.url.rsplit(":", 1)[1]), STARTUP_TIMEOUT_S)
    with INTERRUPTS.held():
        asyncio.run(_load_registry(database_url, args.scenario))
    return DemoServer(args.host, port, token), sandbox


async def _load_registry(database_url: str, scenario: str) -> None:
    """The demo's shelters and their batteries, written once the server has migrated."""
    from server.db.session import Database
    from server.registry import load_demo_registry

    db = Database(database_url)
    try:
        await load_demo_registry(db, scenario)
    finally:
        await db.dispose()


def _port_or_free(host: str, port: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return free_port()
    return port


def _start_broker(children: Processes) -> str:
    port = int(os.environ.get("CHARGENET_DEMO_MQTT_PORT") or free_port())
    children.start("broker", ["broker", "--port", str(port)])
    wait_for_mqtt("127.0.0.1", port, STARTUP_TIMEOUT_S)
    return f"mqtt://127.0.0.1:{port}"


def wait_for_mqtt(host: str, port: int, timeout_s: float) -> None:
    """Until the broker answers an MQTT CONNECT (a bare TCP probe makes it log an error)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="chargenet-demo-probe")
        try:
            client.connect(host, port, keepalive=5)
            client.disconnect()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no MQTT broker on {host}:{port} after {timeout_s}s")


async def _run(mqtt_url: str, children: Processes, exit_after: float | None, console: bool) -> None:
    """Watch the children (and draw the console view if asked) until told to stop."""
    viewer: asyncio.Task[None] | None = None
    if console:
        from chargenet.console import watch

        url = urlsplit(mqtt_url)
        viewer = asyncio.create_task(
            watch(url.hostname or "127.0.0.1", url.port or 1883, DEFAULT_PREFIX)
        )
    started = time.monotonic()
    try:
        while exit_after is None or time.monotonic() - started < exit_after:
            children.check()
            if viewer is not None and viewer.done():
                viewer.result()
            await asyncio.sleep(0.5)
    finally:
        if viewer is not None:
            viewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await viewer
