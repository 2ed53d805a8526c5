"""Operator accounts (`/api/v1/operators`, HQ only): create, list, rotate, revoke.

A token is in the answer that makes it (create, rotate) and nowhere else, ever. Each
change is audited under the HQ operator who made it (`server.access.tokens`).
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Path
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr

from server.access.operators import Operator, Role
from server.access.tokens import Account
from server.api import schemas
from server.api.auth import ADMIN, Actor
from server.api.deps import Svc
from server.api.errors import documented

NAME_RE: Final = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$"
Name = Annotated[str, Field(pattern=NAME_RE, description="e.g. hq-sato, ozu-tanaka")]

router = APIRouter(
    prefix="/operators", tags=["operators"], dependencies=[ADMIN],
    responses=documented(401, 403, 422, 503),
)  # fmt: skip


class OperatorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Name
    role: Role
    municipality: Annotated[schemas.Text, Field(min_length=1, max_length=100)] | None = None
    """A municipality operator's own; a viewer's if it reads one municipality only."""


class OperatorOut(BaseModel):
    name: str
    role: Role
    municipality: str | None
    created_at: AwareDatetime
    rotated_at: AwareDatetime | None
    revoked_at: AwareDatetime | None


class OperatorList(BaseModel):
    operators: list[OperatorOut]


class IssuedOut(OperatorOut):
    token: str
    """The bearer token: shown in this answer only, keep it now."""


def _out(account: Account) -> OperatorOut:
    op = account.operator
    return OperatorOut(name=op.name, role=op.role, municipality=op.municipality,
                       created_at=account.created_at, rotated_at=account.rotated_at,
                       revoked_at=account.revoked_at)  # fmt: skip


def _issued(account: Account, token: SecretStr) -> IssuedOut:
    return IssuedOut(**_out(account).model_dump(), token=token.get_secret_value())


PathName = Annotated[str, Path(pattern=NAME_RE)]


@router.get("", response_model=OperatorList)
async def list_operators(actor: Actor, svc: Svc) -> OperatorList:
    """Every account, revoked ones too (their names stay taken: the audit log names them)."""
    actor.require_hq("the operator accounts")
    return OperatorList(operators=[_out(a) for a in await svc.operators.list()])


@router.post("", response_model=IssuedOut, status_code=201, responses=documented(400, 409, 415))
async def create_operator(spec: OperatorSpec, actor: Actor, svc: Svc) -> IssuedOut:
    actor.require_hq("the operator accounts")
    operator = Operator(spec.name, spec.role, spec.municipality)  # Invalid: role and reach
    account, token = await svc.operators.create(operator, actor)
    return _issued(account, token)


@router.post("/{name}/rotate", response_model=IssuedOut, responses=documented(404))
async def rotate_operator(name: PathName, actor: Actor, svc: Svc) -> IssuedOut:
    """A new token; the old one is refused from this answer on."""
    actor.require_hq("the operator accounts")
    account, token = await svc.operators.rotate(name, actor)
    return _issued(account, token)


@router.delete("/{name}", response_model=OperatorOut, responses=documented(404))
async def revoke_operator(name: PathName, actor: Actor, svc: Svc) -> OperatorOut:
    """The account's token is refused from now on; the account stays, revoked."""
    actor.require_hq("the operator accounts")
    return _out(await svc.operators.revoke(name, actor))
