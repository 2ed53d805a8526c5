"""A backup brings back what a municipality cannot lose, by the very commands
docs/operations.md gives its staff: pg_dump of a database the real app filled (demo
registry, bookings, a cancellation, a port disable that moves a booking), pg_restore into a
fresh database, the switch of names, then the app on the restored database: every row is
back and new bookings and audit entries follow on (sequences restored)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import SecretStr
from sqlalchemy import select

from server.api.app import create_app
from server.db.models import Base, Booking
from server.settings import Settings
from tests.conditions import wait_until
from tests.postgres import bin_dir, create_database
from tests.server.api.conftest import ADMIN, TOKEN, client_of, demo_app

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "operations.md"
MARK = "<!-- tests/system/test_backup_restore.py runs this: {name} -->"

Snapshot = dict[str, list[dict[str, Any]]]


@pytest.fixture
def anyio_backend() -> str:
    """The app runs on asyncio (uvloop in production), not trio."""
    return "asyncio"


def guide_block(name: str) -> str:
    """The shell block that follows `MARK` for `name` in the operations guide."""
    text = GUIDE.read_text(encoding="utf-8")
    marker = MARK.format(name=name)
    assert text.count(marker) == 1, f"{marker} must appear once in {GUIDE}"
    found = re.search(re.escape(marker) + r"\s*```sh\n(.*?)```", text, re.S)
    assert found, f"no ```sh block right after {marker}"
    return found.group(1)


def run_block(name: str, env: dict[str, str]) -> str:
    """Run a block of the guide with bash, stopping at its first failing command."""
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", guide_block(name)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, f"{name} block failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def libpq_env(server: str, **variables: str) -> dict[str, str]:
    """The environment staff set (PGHOST, PGPORT, PGUSER, PGPASSWORD) plus the guide's
    variables; PostgreSQL's programs first on PATH."""
    parts = urlsplit(server)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGHOST=parts.hostname or "127.0.0.1", PGPORT=str(parts.port or 5432),
               PGUSER=parts.username or "postgres", PATH=f"{bin_dir()}:{env['PATH']}")  # fmt: skip
    if parts.password:
        env["PGPASSWORD"] = parts.password
    env.update(variables)
    return env


def snapshot(server: str, database: str) -> Snapshot:
    """Every row of every table, ordered by primary key, and the schema's revision."""
    rows: Snapshot = {}
    with psycopg.connect(f"{server}/{database}", row_factory=dict_row) as connection:
        for table in Base.metadata.sorted_tables:
            order = sql.SQL(", ").join(sql.Identifier(c.name) for c in table.primary_key)
            query = sql.SQL("SELECT * FROM {} ORDER BY {}").format(
                sql.Identifier(table.name), order
            )
            rows[table.name] = connection.execute(query).fetchall()
        rows["alembic_version"] = connection.execute(
            "SELECT version_num FROM alembic_version"
        ).fetchall()
    return rows


def connections_to(server: str, database: str) -> int:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        found = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchone()
    return int(found[0]) if found else 0


def app_settings(url: str) -> Settings:
    return Settings(
        database_url=url, mqtt_url=None, admin_token=SecretStr(TOKEN), report_period_s=60.0
    )


async def book(client: Any, resident: str, station: str, window: int) -> dict[str, Any]:
    windows = (await client.get(f"/api/v1/stations/{station}/windows")).json()["windows"]
    open_ = [w for w in windows if w["places"] > 0]
    body = {"resident_id": resident, "station_id": station, "window_start": open_[window]["start"]}
    made = await client.post("/api/v1/bookings", json=body, headers=ADMIN)
    assert made.status_code == 201, made.text
    booking: dict[str, Any] = made.json()
    return booking


async def fill(url: str) -> dict[str, dict[str, Any]]:
    """What a morning at two shelters leaves behind, made through the API; every booking
    as the API answers for it."""
    async with demo_app(url) as app, client_of(app) as client:
        await book(client, "walk-in-1", "ozu-02", 1)
        await book(client, "walk-in-2", "ozu-02", 2)
        await book(client, "walk-in-3", "ozu-01", 1)
        gone = await book(client, "walk-in-4", "ozu-01", 2)
        assert (await client.delete(f"/api/v1/bookings/{gone['id']}")).status_code == 200
        disabled = await client.post("/api/v1/ports/demo-gw/tcp-1.1/1/disable", headers=ADMIN)
        assert disabled.status_code == 200, disabled.text
        async with app.state.services.db.transaction() as session:
            ids = (await session.scalars(select(Booking.id))).all()
        return {i: (await client.get(f"/api/v1/bookings/{i}")).json() for i in ids}


async def test_pg_dump_and_pg_restore_as_the_guide_says(
    postgres_server: str, tmp_path: Path
) -> None:
    url = create_database(postgres_server)
    name = url.rsplit("/", 1)[1]
    answers = await fill(url)
    before = snapshot(postgres_server, name)
    assert {"active", "cancelled"} <= {b["status"] for b in answers.values()}
    assert len(before["bookings"]) == len(answers) >= 4
    assert before["audit_log"], "the port disable at least is audited"
    assert before["stations"] and before["ports"] and before["commands"]

    env = libpq_env(
        postgres_server, DB=name, RESTORED=f"{name}_restored",
        BACKUP=str(tmp_path / "chargenet.dump"),
    )  # fmt: skip
    run_block("backup", env)
    assert (tmp_path / "chargenet.dump").stat().st_size > 0
    checked = run_block("restore", env)
    assert before["alembic_version"][0]["version_num"] in checked  # the check prints it
    assert snapshot(postgres_server, f"{name}_restored") == before
    # Staff stop every server and intake first; here the backends of our own connections
    # (the app's pool, pg_dump, the snapshots) must be gone before the rename.
    wait_until(lambda: connections_to(postgres_server, name) == 0, 30, "no connections")
    run_block("switch", env)
    assert snapshot(postgres_server, name) == before
    assert snapshot(postgres_server, f"{name}_before_restore") == before

    restored = url  # the same name, now the restored database
    last_audit = before["audit_log"][-1]["id"]
    app = create_app(app_settings(restored))
    async with app.router.lifespan_context(app), client_of(app) as client:
        for booking_id, answer in answers.items():  # id, resident, station, window, port, status
            assert (await client.get(f"/api/v1/bookings/{booking_id}")).json() == answer
        new = await book(client, "walk-in-5", "ozu-02", 3)
        assert new["id"] not in answers
        off = await client.post("/api/v1/ports/demo-gw/tcp-1.1/2/disable", headers=ADMIN)
        assert off.status_code == 200, off.text
    after = snapshot(postgres_server, name)
    assert [b for b in after["bookings"] if b["id"] == new["id"]]
    assert after["audit_log"][: len(before["audit_log"])] == before["audit_log"]
    assert min(e["id"] for e in after["audit_log"][len(before["audit_log"]) :]) > last_audit
    assert len(after["commands"]) > len(before["commands"])
