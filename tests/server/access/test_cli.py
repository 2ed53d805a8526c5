"""`chargenet operators` at the database: the first HQ account without a bootstrap token,
and a leaked token locked out with no HQ operator at hand."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from server.access.cli import main as operators_main
from server.access.operators import Operator
from server.access.tokens import Operators
from server.db.session import Database
from server.registry.service import utc_now


def authenticate(url: str, token: str) -> Operator | None:
    async def check() -> Operator | None:
        db = Database(url)
        try:
            return await Operators(db, utc_now).authenticate(token, "GET", "/api/v1/incidents")
        finally:
            await db.dispose()

    return asyncio.run(check())


def test_create_list_rotate_and_revoke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ops.sqlite3'}"  # not yet migrated: the CLI does
    monkeypatch.setenv("CHARGENET_DATABASE_URL", url)
    args = ["create", "ozu-tanaka", "--role", "municipality", "--municipality", "大洲市"]
    assert operators_main(args) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("cgo_")
    assert authenticate(url, token) == Operator("ozu-tanaka", "municipality", "大洲市")
    assert operators_main(["rotate", "ozu-tanaka"]) == 0
    fresh = capsys.readouterr().out.strip()
    assert authenticate(url, token) is None and authenticate(url, fresh) is not None
    assert operators_main(["revoke", "ozu-tanaka"]) == 0
    assert authenticate(url, fresh) is None
    assert operators_main(["list"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("ozu-tanaka\tmunicipality\t大洲市\trevoked ")
    assert operators_main(["create", "x", "--role", "municipality"]) == 2
    assert "needs its municipality" in capsys.readouterr().err
    assert operators_main(["rotate", "nobody"]) == 2
    assert "no active operator nobody" in capsys.readouterr().err
