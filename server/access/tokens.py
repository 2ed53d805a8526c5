"""Operator accounts and their bearer tokens: created, rotated, revoked, checked.

A token is shown once, when made; the database keeps its SHA-256 only (a token is 256
random bits, so a fast hash is as safe as a slow one and costs a request nothing). Every
use of a token is an audit entry (`operator.used`, the method and path), written in the
same transaction that finds the account, so no request acts unrecorded. Rotating gives a
new token and the old one stops at once; revoking stops the account for good.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, cast

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.access.operators import Operator, Role
from server.db.models import OperatorToken
from server.db.session import Database
from server.errors import Conflict, NotFound

TOKEN_PREFIX: Final = "cgo_"
"""Marks a chargenet operator token, so a leaked one is recognised by secret scanners."""

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Account:
    operator: Operator
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Operators:
    """One per app; every change is audited under the operator who made it."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def create(self, operator: Operator, by: Operator) -> tuple[Account, SecretStr]:
        """The new account and its token (shown this once); Conflict if the name is taken,
        also by a revoked account."""
        token = _new_token()
        async with self._db.transaction() as session:
            if await session.get(OperatorToken, operator.name) is not None:
                raise Conflict(f"operator {operator.name} exists", code="operator_exists")
            row = OperatorToken(
                name=operator.name, role=operator.role, municipality=operator.municipality,
                token_hash=digest(token.get_secret_value()), created_at=self._clock(),
            )  # fmt: skip
            session.add(row)
            reach = {"role": operator.role, "municipality": operator.municipality}
            await self._audit(session, by, "operator.created", operator.name, reach)
            return _account(row), token

    async def rotate(self, name: str, by: Operator) -> tuple[Account, SecretStr]:
        """A new token for the account; the old one is refused from now on."""
        token = _new_token()
        async with self._db.transaction() as session:
            row = await _active(session, name)
            row.token_hash, row.rotated_at = digest(token.get_secret_value()), self._clock()
            await self._audit(session, by, "operator.rotated", name, {})
            return _account(row), token

    async def revoke(self, name: str, by: Operator) -> Account:
        async with self._db.transaction() as session:
            row = await _active(session, name)
            row.revoked_at = self._clock()
            await self._audit(session, by, "operator.revoked", name, {})
            return _account(row)

    async def list(self) -> list[Account]:
        async with self._db.transaction() as session:
            rows = await session.scalars(select(OperatorToken).order_by(OperatorToken.name))
            return [_account(row) for row in rows]

    async def authenticate(self, token: str, method: str, path: str) -> Operator | None:
        """The token's operator, its use recorded; None for no active account's token."""
        async with self._db.transaction() as session:
            row = await session.scalar(
                select(OperatorToken).where(
                    OperatorToken.token_hash == digest(token), OperatorToken.revoked_at.is_(None)
                )
            )
            if row is None:
                return None
            operator = _account(row).operator
            await self._used(session, operator, method, path)
            return operator

    async def record_use(self, operator: Operator, method: str, path: str) -> None:
        """The audit entry of a use by a token not kept here (the bootstrap admin token)."""
        async with self._db.transaction() as session:
            await self._used(session, operator, method, path)

    async def _used(self, session: AsyncSession, by: Operator, method: str, path: str) -> None:
        await self._audit(session, by, "operator.used", by.name, {"method": method, "path": path})

    async def _audit(
        self,
        session: AsyncSession,
        by: Operator,
        action: str,
        name: str,
        detail: Mapping[str, object],
    ) -> None:
        await audit.record(session, by.name, action, f"operator:{name}", dict(detail),
                           at=self._clock())  # fmt: skip


def _new_token() -> SecretStr:
    return SecretStr(TOKEN_PREFIX + secrets.token_urlsafe(32))


async def _active(session: AsyncSession, name: str) -> OperatorToken:
    row = await session.get(OperatorToken, name)
    if row is None or row.revoked_at is not None:
        raise NotFound(f"no active operator {name}")
    return row


def _account(row: OperatorToken) -> Account:
    operator = Operator(row.name, cast(Role, row.role), row.municipality)
    return Account(operator, row.created_at, row.rotated_at, row.revoked_at)
