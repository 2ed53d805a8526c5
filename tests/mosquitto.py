"""A real Mosquitto broker for tests: started on a free port, stoppable and restartable."""

from __future__ import annotations

import getpass
import secrets
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from chargenet.demo import free_port
from server.ingest.link import INFLIGHT_WINDOW

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def mosquitto_binary() -> str:
    """The broker binary; a missing broker is an error, never a skip."""
    found = shutil.which("mosquitto") or next(
        (p for p in MOSQUITTO_PATHS if Path(p).exists()), None
    )
    if found is None:
        raise RuntimeError("mosquitto is not installed (apt-get install mosquitto); tests need it")
    return found


class Mosquitto:
    """One broker process with persistence in `workdir`, so a restart keeps sessions.

    Anonymous by default; with `users` (name -> password) and `acl_file`, every client must
    log in and may touch only what the ACL grants, as `deploy/mosquitto` configures it.
    `extra` is appended to the config (a bridge's section, say)."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        users: dict[str, str] | None = None,
        acl_file: Path | None = None,
        extra: str = "",
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.config = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        access = "allow_anonymous true\n"
        if users is not None:
            access = f"allow_anonymous false\npassword_file {self._password_file(users)}\n"
        if acl_file is not None:
            access += f"acl_file {acl_file}\n"
        self.config.write_text(
            f"user {getpass.getuser()}\n"  # as root, do not drop to a user who cannot write here
            f"listener {self.port} 127.0.0.1\n"
            f"{access}"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 100000\n"
            f"max_inflight_messages {INFLIGHT_WINDOW}\n"  # the server acknowledges after commit
            f"log_dest file {self.log}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            f"{extra}"
        )
        self._process: subprocess.Popen[bytes] | None = None

    def _password_file(self, users: dict[str, str]) -> Path:
        """Mosquitto's hashed password file, made with its own `mosquitto_passwd`."""
        tool = shutil.which("mosquitto_passwd")
        if tool is None:
            raise RuntimeError("mosquitto_passwd is not installed (it comes with mosquitto)")
        path = self.workdir / "passwd"
        path.touch(mode=0o600)
        for name, password in users.items():
            subprocess.run([tool, "-b", str(path), name, password], check=True,
                           capture_output=True)  # fmt: skip
        return path

    def start(self, timeout_s: float = 10.0) -> None:
        self._process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"mosquitto exited: {err} {self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)  # polling the port until it accepts, bounded by the deadline
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout_s}s")

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._process = None

    def kill(self) -> None:
        """SIGKILL: a broker node dying, with no Last Will published and nothing saved."""
        if self._process and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None


class Listening(Protocol):
    """A broker (or cluster node) an `MqttSession` can connect to."""

    @property
    def port(self) -> int: ...


class MqttSession:
    """A plain paho client (its own thread) that records the messages it gets and how its
    CONNECT went; `persistent` keeps its session (and what is queued for it) at the broker
    across reconnects, and it reconnects by itself."""

    def __init__(
        self,
        broker: Listening,
        user: str = "tester",
        password: str = "unused",
        *,
        persistent: bool = False,
    ) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.refused: str | None = None
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        client_id = user if persistent else f"{user}-{secrets.token_hex(4)}"
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent
        )
        self.client.username_pw_set(user, password)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.client.on_subscribe = lambda *_args: self.subscribed.set()
        self.client.connect("127.0.0.1", broker.port, keepalive=10)
        self.client.loop_start()

    def _on_connect(self, _client: paho.Client, _userdata: object, _flags: object,
                    reason: ReasonCode, _properties: object) -> None:  # fmt: skip
        if reason.is_failure:
            self.refused = str(reason)
        self.connected.set()

    def subscribe(self, *topics: str) -> None:
        for topic in topics:
            self.subscribed.clear()
            self.client.subscribe(topic, qos=1)
            assert self.subscribed.wait(10), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
