"""A real `chargenet server` process on a free port, for browser and end-to-end tests."""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chargenet.demo import free_port, wait_for_port
from tests.system.harness import Child

TOKEN = "e2e-admin-token"


class ServerProcess(Child):
    def __init__(
        self,
        workdir: Path,
        mqtt_url: str,
        report_period_s: float,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url or f"sqlite+aiosqlite:///{workdir / 'server.sqlite3'}"
        settings = {
            "CHARGENET_DATABASE_URL": self.database_url, "CHARGENET_MQTT_URL": mqtt_url,
            "CHARGENET_ADMIN_TOKEN": TOKEN, "CHARGENET_REPORT_PERIOD_S": str(report_period_s),
            "CHARGENET_MQTT_CLIENT_ID": f"server-{self.port}",
            "CHARGENET_MOVE_GRACE_S": "0",  # moves at once unless a test says otherwise
            **(env or {}),
        }  # fmt: skip
        super().__init__(
            ["server", "--port", str(self.port)],
            workdir / f"server-{self.port}.log",
            env=settings,
        )
        wait_for_port("127.0.0.1", self.port, 30)

    def request(self, method: str, path: str, body: Any = None, admin: bool = False) -> Any:
        """JSON in, JSON out; urllib.error.HTTPError on a 4xx/5xx answer."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if admin:
            headers["Authorization"] = f"Bearer {TOKEN}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.loads(reply.read())

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def metrics(self) -> str:
        """The Prometheus text of `/metrics`."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=30) as reply:
            text: str = reply.read().decode()
            return text

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        return self.request(method, path, body, admin=True)

    def register(self, user_id: str, municipality: str, need: str | None, reference: str) -> None:
        """A LINE resident's registration in the server's SQLite file, as the chat stores it
        (`resident_registrations`), for tests about what operators do with it."""
        now = datetime.now(UTC).isoformat()
        path = self.database_url.split("///", 1)[1]
        with closing(sqlite3.connect(path)) as db, db:
            db.execute(
                "INSERT INTO resident_registrations (user_id, municipality, district, stay,"
                " need_requested, consented_at, updated_at, reference)"
                " VALUES (?, ?, NULL, 'home', ?, ?, ?, ?)",
                (user_id, municipality, need, now, now, reference),
            )

    def count(self, query: str) -> int:
        """The one number `query` selects from the server's SQLite file (read only; 0 for
        NULL or no row): what the database stored is the judge of what was delivered."""
        path = self.database_url.split("///", 1)[1]
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            row = db.execute(query).fetchone()
        return int(row[0] or 0) if row else 0


class IntakeProcess(Child):
    """A real `chargenet intake` on a free port, handing on to `server_url`."""

    def __init__(
        self,
        workdir: Path,
        server_url: str,
        line_channel_secret: str,
        journal: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.journal = journal or workdir / "line-intake.sqlite3"
        settings = {
            "CHARGENET_LINE_CHANNEL_SECRET": line_channel_secret,
            "CHARGENET_INTAKE_SERVER_URL": server_url,
            "CHARGENET_INTAKE_JOURNAL": str(self.journal),
            **(env or {}),
        }
        super().__init__(["intake", "--port", str(self.port)],
                         workdir / f"intake-{self.port}.log", env=settings)  # fmt: skip
        wait_for_port("127.0.0.1", self.port, 30)

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/healthz", timeout=30) as reply:
            found: dict[str, Any] = json.loads(reply.read())
            return found
