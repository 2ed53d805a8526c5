"""Bearer-token guard for admin endpoints.

The token is compared in constant time; an empty configured token disables every admin
endpoint (401) rather than opening them. Routes declare the guard with
`dependencies=[ADMIN]`, which the 401 test finds by walking the app's routes.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Final

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from server.errors import Unauthorized

bearer = HTTPBearer(auto_error=False, description="the admin token (CHARGENET_ADMIN_TOKEN)")


def require_admin(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> str:
    """The actor name for the audit log, or 401."""
    expected = request.app.state.settings.admin_token.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials is not None else b""
    if not expected or not hmac.compare_digest(given, expected):
        raise Unauthorized("a valid admin bearer token is required")
    actor: str = request.headers.get("x-actor", "admin")[:100] or "admin"
    return actor


ADMIN: Final = Depends(require_admin)

Actor = Annotated[str, Depends(require_admin)]
