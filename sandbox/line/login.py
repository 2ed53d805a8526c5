"""LINE Login's ID tokens as a LIFF app gets them, and LINE's endpoint that verifies them.

A tester (or the tests) asks for a resident's ID token (`POST
/_sandbox/line/users/{user_id}/id-token`, optionally `{"expires_in_s": ...}`, negative for
one already expired); a partner app or the LIFF page would send it to the server, which
asks `POST /line/oauth2/v2.1/verify` (form `id_token`, `client_id`) as it asks LINE. The
answers follow LINE's: the token's claims on 200; 400 with `error` and
`error_description` for a token that is not one of ours, expired, or for another channel.
Tokens are HS256 JWTs signed with the channel secret, as LINE Login signs them.
"""

from __future__ import annotations

import time
from typing import Any, Final
from urllib.parse import parse_qs

import jwt
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from sandbox.line.state import LineState
from sandbox.line.validation import USER_ID

ISSUER: Final = "https://access.line.me"


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expires_in_s: float = 3600.0


def router(state: LineState) -> APIRouter:
    api = APIRouter()
    secret = state.config.channel_secret.get_secret_value()
    channel = state.config.login_channel_id

    @api.post("/_sandbox/line/users/{user_id}/id-token")
    async def issue(user_id: str, request: TokenRequest | None = None) -> JSONResponse:
        if not USER_ID.fullmatch(user_id):
            return JSONResponse({"detail": "a LINE user id is U and 32 hex digits"}, 422)
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": user_id, "aud": channel, "iat": now,
                  "exp": now + int((request or TokenRequest()).expires_in_s), "amr": ["pwd"],
                  "name": state.resident(user_id).display_name}  # fmt: skip
        return JSONResponse({"idToken": jwt.encode(claims, secret, algorithm="HS256")})

    @api.post("/line/oauth2/v2.1/verify")
    async def verify(request: Request) -> JSONResponse:
        form = {
            k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()
        }
        id_token, client_id = form.get("id_token", ""), form.get("client_id", "")
        if not id_token or not client_id:
            return _refused("id_token and client_id are required")
        if client_id != channel:
            return _refused("Invalid IdToken Audience.")
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token, secret, algorithms=["HS256"], audience=channel, issuer=ISSUER
            )
        except jwt.ExpiredSignatureError:
            return _refused("IdToken expired.")
        except jwt.InvalidTokenError:
            return _refused("Invalid IdToken.")
        return JSONResponse(claims)

    return api


def _refused(description: str) -> JSONResponse:
    return JSONResponse({"error": "invalid_request", "error_description": description}, 400)
