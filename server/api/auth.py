"""The operator API's guard: who the bearer token is, and that they may use this method.

A token is an operator account's (`server.access.tokens`) or the bootstrap admin token
(`CHARGENET_ADMIN_TOKEN`, an HQ operator named by `X-Actor`, for the first accounts and
for tests; leave it empty in production once accounts exist). Compared in constant time;
no token, or an empty configured one, is 401. A viewer gets 403 for anything but GET and
HEAD. Every use is in the audit log. Routes declare the guard with `dependencies=[ADMIN]`
(the 401 test finds them by walking the app's routes) and take the operator as `Actor`
to check its reach (`Operator.require_reach`).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Final

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from server.access.operators import Operator
from server.access.tokens import Operators
from server.errors import Unauthorized
from server.settings import Settings

bearer = HTTPBearer(auto_error=False, description="an operator's token")

READS: Final = frozenset({"GET", "HEAD"})
BOOTSTRAP: Final = "admin"


async def operator_of(
    settings: Settings, operators: Operators, token: str, actor: str | None, method: str, path: str
) -> Operator:
    """The token's operator, its use audited; Unauthorized for any other token.

    `actor` (`X-Actor`) names whoever uses the shared bootstrap token; an account's token
    names its own operator and `X-Actor` is ignored.
    """
    bootstrap = settings.admin_token.get_secret_value().encode()
    if bootstrap and hmac.compare_digest(token.encode(), bootstrap):
        operator = Operator((actor or BOOTSTRAP)[:100], "hq")
        await operators.record_use(operator, method, path)
        return operator
    found = await operators.authenticate(token, method, path) if token else None
    if found is None:
        raise Unauthorized("a valid operator bearer token is required")
    return found


async def require_operator(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Operator:
    services = request.app.state.services
    operator = await operator_of(
        services.settings, services.operators, credentials.credentials if credentials else "",
        request.headers.get("x-actor"), request.method, request.url.path,
    )  # fmt: skip
    if request.method not in READS:
        operator.require_write()
    return operator


ADMIN: Final = Depends(require_operator)

Actor = Annotated[Operator, Depends(require_operator)]
