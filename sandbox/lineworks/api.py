"""The LINE WORKS stand-in's HTTP surface: what the platform serves, and the control API.

Platform (what the server calls, as `https://auth.worksmobile.com` and
`https://www.worksapis.com` answer):
- `POST /lineworks/oauth2/v2.0/token`: a service account's RS256 JWT (iss = client id,
  sub = service account, exp at most an hour after iat) for an access token.
- `POST /lineworks/v1.0/bots/{botId}/channels/{channelId}/messages` and
  `.../users/{userId}/messages`: 201 for a valid body sent with a live token; 429 past
  `requests_per_min` when the settings file sets one.

Control (what tests and the web view use), under `/_sandbox/lineworks`: each talk's
messages, crews' presses sent as signed callbacks, injected faults, token revocation and
expiry, reset, and the web view.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import parse_qs

import httpx
import jwt
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sandbox.lineworks import callbacks, validation
from sandbox.lineworks.state import Conversation, Endpoint, Fault, WorksState

JWT_GRANT: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REFRESH_GRANT: Final = "refresh_token"
JWT_LIFETIME_MAX_S: Final = 3600
CLOCK_SKEW_S: Final = 60
"""An `iat` this far ahead of our clock is still taken (the caller's clock may run fast)."""
CONTROL: Final = "/_sandbox/lineworks"
STATIC: Final = Path(__file__).parent / "static"
FAULT_CODES: Final = {429: "TOO_MANY_REQUESTS", 500: "INTERNAL_SERVER_ERROR",
                      502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE"}  # fmt: skip


class FaultRequest(BaseModel):
    """`{"status": 500|429, "count": N}` or `{"delay_s": S, "count": N}` (a hang: the caller
    times out, and a call it gave up on is not delivered), hitting the next `count` calls of
    `calls` (the bot's message endpoints unless the token endpoint is named)."""

    model_config = ConfigDict(extra="forbid")
    status: int | None = Field(default=None, ge=400, le=599)
    delay_s: float = Field(default=0.0, ge=0, le=600)
    retry_after_s: float | None = Field(default=None, ge=0)
    """Sent as `Retry-After` with the status."""
    count: int = Field(default=1, ge=1, le=10_000)
    calls: tuple[Endpoint, ...] = Field(default=("messages",), min_length=1)

    @model_validator(mode="after")
    def _does_something(self) -> FaultRequest:
        if self.status is None and not self.delay_s:
            raise ValueError("a fault needs a status or a delay_s")
        return self


class PressRequest(BaseModel):
    """A crew member's press of the button carrying `postback` (the newest in the talk), or
    their typing `text`; in `channelId`, or in their 1:1 talk with the bot when absent."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    user_id: str = Field(alias="userId", min_length=1, max_length=200)
    channel_id: str | None = Field(default=None, alias="channelId", min_length=1, max_length=200)
    postback: str | None = Field(default=None, min_length=1, max_length=1000)
    text: str | None = Field(default=None, min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _one_of(self) -> PressRequest:
        if (self.postback is None) == (self.text is None):
            raise ValueError("give exactly one of postback and text")
        return self


def api_error(status: int, code: str, description: str) -> JSONResponse:
    """An error as the platform's APIs write it."""
    return JSONResponse({"code": code, "description": description}, status_code=status)


def oauth_error(status: int, error: str, description: str) -> JSONResponse:
    """An error as the platform's token endpoint writes it (RFC 6749)."""
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def grant_problem(state: WorksState, form: dict[str, str]) -> JSONResponse | None:
    """Why this token request is refused; None when it earns a token. A service account's
    JWT (scope bot) or, as the platform also takes, a refresh token it issued."""
    config = state.config
    grant = form.get("grant_type", "")
    if grant not in (JWT_GRANT, REFRESH_GRANT):
        return oauth_error(400, "unsupported_grant_type", grant or "no grant_type")
    needed = ("assertion", "scope") if grant == JWT_GRANT else ("refresh_token",)
    missing = [k for k in ("client_id", "client_secret", *needed) if not form.get(k)]
    if missing:
        return oauth_error(400, "invalid_request", f"missing {', '.join(missing)}")
    secret = config.client_secret.get_secret_value()
    if form["client_id"] != config.client_id or form["client_secret"] != secret:
        return oauth_error(401, "invalid_client", "unknown client_id or wrong client_secret")
    if grant == REFRESH_GRANT:
        if form["refresh_token"] not in state.refresh_tokens:
            return oauth_error(400, "invalid_grant", "unknown refresh_token")
        return None
    if "bot" not in form["scope"].replace(",", " ").split():
        return oauth_error(400, "invalid_scope", "the bot API needs scope bot")
    try:
        claims = jwt.decode(
            form["assertion"], config.public_key_pem, algorithms=["RS256"],
            options={"require": ["iss", "sub", "iat", "exp"], "verify_exp": False,
                     "verify_iat": False},
        )  # fmt: skip
    except jwt.InvalidTokenError as error:
        return oauth_error(400, "invalid_grant", f"assertion: {error}")
    return claims_problem(state, claims)


def claims_problem(state: WorksState, claims: dict[str, Any]) -> JSONResponse | None:
    """The verified JWT's claims against the client app and the clock."""
    iat, exp, now = claims["iat"], claims["exp"], state.clock()
    if claims["iss"] != state.config.client_id:
        return oauth_error(400, "invalid_grant", "iss is not the client id")
    if claims["sub"] != state.config.service_account:
        return oauth_error(400, "invalid_grant", "sub is not the service account")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (iat, exp)):
        return oauth_error(400, "invalid_grant", "iat and exp must be numeric dates")
    if exp <= iat or exp - iat > JWT_LIFETIME_MAX_S:
        return oauth_error(400, "invalid_grant", "exp must be after iat, by at most 60 min")
    if exp <= now:
        return oauth_error(400, "invalid_grant", "the assertion has expired")
    if iat > now + CLOCK_SKEW_S:
        return oauth_error(400, "invalid_grant", "iat is in the future")
    return None


async def suffer(state: WorksState, endpoint: Endpoint, request: Request) -> Response | None:
    """Apply the next injected fault of `endpoint`: its answer, or None to carry on."""
    fault = state.next_fault(endpoint)
    if fault is None:
        return None
    if fault.delay_s:
        await request.body()  # read whole first, so that a caller gone is seen as gone
        await asyncio.sleep(fault.delay_s)
        if await request.is_disconnected():
            state.dropped += 1
            return Response(status_code=504)  # nobody reads it; the call is not delivered
    if fault.status is None:
        return None
    code = FAULT_CODES.get(fault.status, "ERROR")
    response = api_error(fault.status, code, "injected by the sandbox")
    if fault.retry_after_s is not None:
        response.headers["Retry-After"] = f"{fault.retry_after_s:g}"
    return response


def router(state: WorksState) -> APIRouter:
    """The platform's endpoints and the control API over one `state`."""
    routes = APIRouter()

    @routes.post("/lineworks/oauth2/v2.0/token", include_in_schema=False)
    async def token(request: Request) -> Response:
        faulted = await suffer(state, "token", request)
        if faulted is not None:
            return faulted
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        if content_type != "application/x-www-form-urlencoded":
            return oauth_error(400, "invalid_request", "send application/x-www-form-urlencoded")
        fields = {
            k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()
        }
        problem = grant_problem(state, fields)
        if problem is not None:
            return problem
        granted: dict[str, str] = {"access_token": state.issue_token(), "token_type": "Bearer",
                                   "expires_in": f"{state.config.token_ttl_s:g}"}  # fmt: skip
        if fields["grant_type"] == JWT_GRANT:  # a refresh keeps its refresh token
            granted |= {"refresh_token": state.issue_refresh_token(), "scope": fields["scope"]}
        return JSONResponse(granted)

    async def send(request: Request, where: Conversation, bot_id: str, to: str) -> Response:
        faulted = await suffer(state, "messages", request)
        if faulted is not None:
            return faulted
        wait_s = state.over_limit_s()
        if wait_s is not None:
            limited = api_error(429, "TOO_MANY_REQUESTS", "over the rate limit")
            limited.headers["Retry-After"] = str(math.ceil(wait_s))
            return limited
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        problem = state.token_problem(token) if scheme.lower() == "bearer" else "missing"
        if problem is not None:
            return api_error(401, "UNAUTHORIZED", f"access token {problem}")
        if bot_id != state.config.bot_id:
            return api_error(404, "NOT_FOUND", "no such bot")
        listed = state.config.channels
        if where == "channels" and state.config.listed_channels_only and to not in listed:
            return api_error(404, "NOT_FOUND", "the bot is not in this channel")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return api_error(400, "INVALID_PARAMETER", "the body is not JSON")
        invalid = validation.problems(body)
        if invalid:
            return api_error(400, "INVALID_PARAMETER", "; ".join(invalid))
        state.record(where, to, body["content"])
        return Response(status_code=201)

    @routes.post("/lineworks/v1.0/bots/{bot_id}/channels/{channel_id}/messages",
                 include_in_schema=False)  # fmt: skip
    async def to_channel(request: Request, bot_id: str, channel_id: str) -> Response:
        return await send(request, "channels", bot_id, channel_id)

    @routes.post("/lineworks/v1.0/bots/{bot_id}/users/{user_id}/messages",
                 include_in_schema=False)  # fmt: skip
    async def to_user(request: Request, bot_id: str, user_id: str) -> Response:
        return await send(request, "users", bot_id, user_id)

    @routes.get(CONTROL + "/channels/{channel_id}/messages")
    async def channel_messages(channel_id: str) -> list[dict[str, Any]]:
        return state.messages("channels", channel_id)

    @routes.get(CONTROL + "/users/{user_id}/messages")
    async def user_messages(user_id: str) -> list[dict[str, Any]]:
        return state.messages("users", user_id)

    @routes.get(CONTROL + "/talks")
    async def talks() -> dict[str, Any]:
        """Everything the web view shows: every channel and 1:1 talk, presses, the crew."""
        return state.talks()

    @routes.post(CONTROL + "/press")
    async def press(body: PressRequest) -> Response:
        where: Conversation = "users" if body.channel_id is None else "channels"
        talk = body.channel_id or body.user_id
        presser = callbacks.Presser(body.user_id, body.channel_id, state.config.domain_id)
        issued = state.timestamp()
        if body.postback is None:
            event = callbacks.text_event(body.text or "", presser, issued)
        else:
            action = state.find_action(where, talk, body.postback)
            if action is None:
                return JSONResponse({"error": "no button with this postback in this talk"},
                                    status_code=404)  # fmt: skip
            event = callbacks.press_event(action, presser, issued)
        secret = state.config.bot_secret.get_secret_value()
        try:
            status = await callbacks.post(state.callback_url, event, state.config.bot_id, secret)
        except httpx.HTTPError as error:
            return JSONResponse({"error": f"callback failed: {error!r}"}, status_code=502)
        state.presses.append({"userId": body.user_id, "channelId": body.channel_id,
                              "callback": event, "status": status, "at": issued})  # fmt: skip
        return JSONResponse({"status": status, "callback": event})

    @routes.post(CONTROL + "/faults")
    async def faults(body: FaultRequest) -> dict[str, int]:
        fault = Fault(body.status, body.delay_s, body.retry_after_s)
        for endpoint in dict.fromkeys(body.calls):
            state.add_faults(endpoint, fault, body.count)
        return {"queued": sum(len(queue) for queue in state.faults.values())}

    @routes.get(CONTROL + "/faults")
    async def pending_faults() -> dict[str, int]:
        queued = sum(len(queue) for queue in state.faults.values())
        return {"queued": queued, "dropped": state.dropped}

    @routes.get(CONTROL + "/tokens")
    async def tokens() -> dict[str, int]:
        return {"issued": state.issued, "live": state.live_tokens()}

    @routes.post(CONTROL + "/tokens/revoke")
    async def revoke() -> dict[str, int]:
        return {"revoked": state.revoke_tokens()}

    @routes.post(CONTROL + "/tokens/expire")
    async def expire() -> dict[str, int]:
        return {"expired": state.expire_tokens()}

    @routes.post(CONTROL + "/reset")
    async def reset() -> dict[str, bool]:
        state.reset()
        return {"reset": True}

    @routes.get(CONTROL + "/view", include_in_schema=False)
    async def view() -> FileResponse:
        return FileResponse(STATIC / "view.html", media_type="text/html")

    @routes.get(CONTROL + "/view/{name}", include_in_schema=False)
    async def view_asset(name: Literal["view.js", "view.css"]) -> FileResponse:
        return FileResponse(STATIC / name)

    return routes
