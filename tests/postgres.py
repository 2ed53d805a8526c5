"""A real, throwaway PostgreSQL cluster for tests (Debian's postgresql package).

`CHARGENET_TEST_POSTGRES_URL` (a server URL with a superuser, no database) points the tests
at an existing server instead. Without either, the tests that need PostgreSQL fail: they
never skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from chargenet.demo import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise RuntimeError(
            "PostgreSQL is not installed (apt-get install postgresql); tests need it"
        )
    return found[-1]


def bin_dir() -> Path:
    """The folder of PostgreSQL's programs (pg_dump, pg_restore, createdb, psql), of the
    same version as the clusters the tests start, for tests that run them as staff do."""
    return Path(_bin("pg_dump")).parent


class PostgresCluster:
    """initdb + pg_ctl in a temp dir, as the `postgres` user when we are root."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="chargenet-pg-"))
        self.data = self.root / "data"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--no-sync", "-E", "UTF8")  # fmt: skip
        self.resume()

    def resume(self) -> None:
        """Start the server (again) on the same data and port."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-t", "60",
                  "-l", str(self.root / "log"), "start")  # fmt: skip

    def pause(self) -> None:
        """Stop the server, keeping its data: a database outage."""
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        subprocess.run(
            [*self._as_user, _bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
            capture_output=True, timeout=60,
        )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


def server_url() -> tuple[str, PostgresCluster | None]:
    """The configured server, or a cluster started here (stop it when done)."""
    configured = os.environ.get("CHARGENET_TEST_POSTGRES_URL")
    if configured:
        return configured.rstrip("/"), None
    cluster = PostgresCluster()
    cluster.start()
    return cluster.url, cluster


def create_database(server: str) -> str:
    """A fresh empty database; returns its async SQLAlchemy URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
                connection.execute(f'CREATE DATABASE "{name}"')
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    return f"{server.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
