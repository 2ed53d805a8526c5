"""A real `chargenet server` process on a free port, for browser and end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from chargenet.demo import wait_for_port
from tests.mosquitto import free_port

TOKEN = "e2e-admin-token"


class ServerProcess:
    def __init__(
        self,
        workdir: Path,
        mqtt_url: str,
        report_period_s: float,
        database_url: str | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url or f"sqlite+aiosqlite:///{workdir / 'server.sqlite3'}"
        self.log_path = workdir / f"server-{self.port}.log"
        self._log = self.log_path.open("ab")
        env = {
            **os.environ, "CHARGENET_DATABASE_URL": self.database_url,
            "CHARGENET_MQTT_URL": mqtt_url, "CHARGENET_ADMIN_TOKEN": TOKEN,
            "CHARGENET_REPORT_PERIOD_S": str(report_period_s),
            "CHARGENET_MQTT_CLIENT_ID": f"server-{self.port}",
        }  # fmt: skip
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chargenet", "server", "--port", str(self.port)],
            stderr=self._log, env=env,
        )  # fmt: skip
        wait_for_port("127.0.0.1", self.port, 30)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as reply:
            return json.loads(reply.read())

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())

    def stop(self) -> int:
        self.process.terminate()
        try:
            code = self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._log.close()
        return code
