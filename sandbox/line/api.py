"""The LINE stand-in's HTTP face: the Messaging API under `/line` and the control API under
`/_sandbox/line` that tests and the web chat drive.

Every Messaging API call goes through one pipeline, in the platform's order: an injected
fault (a hang, then an error status or a late success: the platform carries out a call
whose caller gave up waiting, which is what retry keys are for), the channel access token
(401), a retry key where the call takes none (400), the body against line-bot-sdk's models
and the documented limits (400), then the call itself: a reply needs a fresh unused reply
token (400 "Invalid reply token"), a push or multicast whose `X-Line-Retry-Key` was
accepted before is a 409 and is not delivered again. Every answer carries
`x-line-request-id`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from sandbox.line import webhooks
from sandbox.line.state import SENDING, Call, Delivery, Fault, LineState, Via
from sandbox.line.validation import USER_ID, Api, Invalid, validate

log = logging.getLogger(__name__)
STATIC: Final = Path(__file__).parent / "static"
"""The web chat: one page, its script and its styles, nothing from a CDN (it works offline)."""
FAULT_MESSAGES: Final = {
    429: "The API rate limit has been exceeded. Try again later.",
    500: "An internal server error occurred.",
}
UNAUTHORIZED: Final = (
    "Authentication failed. Confirm that the access token in the authorization header is valid."
)
ACTIONS: Final[TypeAdapter[webhooks.Action]] = TypeAdapter(webhooks.Action)
RETRYABLE: Final[tuple[Call, ...]] = ("push", "multicast")
"""The calls that take `X-Line-Retry-Key`; any other refuses it (400), as the platform does."""
BODIES: Final[dict[Call, Api]] = {"reply": "reply", "push": "push", "multicast": "multicast",
                                  "loading": "loading"}  # fmt: skip
"""The calls with a body, and the model that body must fit (a profile request has none)."""
Handler = Callable[[dict[str, Any], str], "Answer"]
"""A call's own work on its validated body and request id."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class FaultRequest(BaseModel):
    """`POST /_sandbox/line/faults`: the next `count` calls of `calls` suffer this."""

    model_config = ConfigDict(extra="forbid")
    status: int | None = Field(default=None, ge=400, le=599)
    delay_s: float = Field(default=0.0, ge=0, le=600)
    retry_after_s: float | None = Field(default=None, ge=0)
    count: int = Field(default=1, ge=1, le=100_000)
    calls: tuple[Call, ...] = SENDING

    @model_validator(mode="after")
    def _does_something(self) -> FaultRequest:
        if self.status is None and not self.delay_s:
            raise ValueError("a fault needs a status, a delay_s or both")
        return self


class Redelivery(BaseModel):
    """`{"redeliver": true}`: the resident's last event again (or the one named)."""

    model_config = ConfigDict(extra="ignore")
    redeliver: bool
    event_id: str | None = Field(default=None, alias="webhookEventId")


def router(state: LineState) -> APIRouter:
    """The routes of one LINE stand-in, sharing `state` and one webhook connection pool."""
    posting = webhooks.Webhooks(state.config.channel_secret.get_secret_value())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await posting.aclose()

    api = APIRouter(lifespan=lifespan)
    token = f"Bearer {state.config.access_token.get_secret_value()}".encode()

    async def serve(request: Request, call: Call, handle: Handler) -> JSONResponse:
        request_id = str(uuid.uuid4())
        answer = await answer_of(request, call, request_id, handle)
        if answer.status >= 400:
            log.info("%s answered %d: %s", call, answer.status, answer.body.get("message"))
        headers = {"x-line-request-id": request_id, **answer.headers}
        return JSONResponse(answer.body, answer.status, headers=headers)

    async def answer_of(request: Request, call: Call, request_id: str, handle: Handler) -> Answer:
        raw = await request.body()  # before a hang: the caller may be gone after it
        fault = state.next_fault(call)
        if fault is not None:
            await asyncio.sleep(fault.delay_s)
            if fault.status is not None:
                return _fault_answer(fault)
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, token):
            return Answer(401, {"message": UNAUTHORIZED})
        if "x-line-retry-key" in request.headers and call not in RETRYABLE:
            return Answer(400, {"message": "X-Line-Retry-Key is not supported for this API"})
        body: dict[str, Any] = {}
        if call in BODIES:
            try:
                body = validate(BODIES[call], json.loads(raw))
            except json.JSONDecodeError:
                return Answer(400, {"message": "The request body is not valid JSON"})
            except Invalid as invalid:
                return Answer(400, invalid.body())
        return handle(body, request_id)

    @api.post("/line/v2/bot/message/reply")
    async def reply(request: Request) -> JSONResponse:
        def handle(body: dict[str, Any], request_id: str) -> Answer:
            user_id = state.take_reply_token(body["replyToken"])
            if user_id is None:
                return Answer(400, {"message": "Invalid reply token"})
            delivery = state.deliver("reply", (user_id,), body["messages"], None, request_id)
            return Answer(200, {"sentMessages": delivery.sent})

        return await serve(request, "reply", handle)

    @api.post("/line/v2/bot/message/push")
    async def push(request: Request) -> JSONResponse:
        key = request.headers.get("x-line-retry-key")
        return await serve(request, "push", lambda body, request_id: _send(
            state, "push", (body["to"],), body["messages"], request_id, key))  # fmt: skip

    @api.post("/line/v2/bot/message/multicast")
    async def multicast(request: Request) -> JSONResponse:
        key = request.headers.get("x-line-retry-key")
        return await serve(request, "multicast", lambda body, request_id: _send(
            state, "multicast", tuple(body["to"]), body["messages"], request_id, key))  # fmt: skip

    @api.post("/line/v2/bot/chat/loading/start")
    async def loading(request: Request) -> JSONResponse:
        return await serve(request, "loading", lambda body, request_id: Answer(202, {}))

    @api.get("/line/v2/bot/profile/{user_id}")
    async def profile(request: Request, user_id: str) -> JSONResponse:
        def handle(body: dict[str, Any], request_id: str) -> Answer:
            found = state.residents.get(user_id)
            if found is None:
                return Answer(404, {"message": "Not found"})
            return Answer(200, {"userId": found.user_id, "displayName": found.display_name,
                                "language": found.language})  # fmt: skip

        return await serve(request, "profile", handle)

    @api.post("/_sandbox/line/users/{user_id}/send")
    async def send(request: Request, user_id: str) -> JSONResponse:
        if not USER_ID.fullmatch(user_id):
            return JSONResponse({"detail": "a LINE user id is U and 32 hex digits"}, 422)
        try:
            raw = json.loads(await request.body())
            if isinstance(raw, dict) and raw.get("redeliver"):
                found = _event(state, user_id, Redelivery.model_validate(raw).event_id)
                if found is None:
                    return JSONResponse({"detail": "no such event of this resident"}, 404)
                sent = webhooks.redelivered(found)
            else:
                sent = _new_event(state, user_id, ACTIONS.validate_python(raw))
        except json.JSONDecodeError:
            return JSONResponse({"detail": "the body is not JSON"}, 400)
        except ValidationError as error:
            return JSONResponse(
                {"detail": error.errors(include_url=False, include_context=False)}, 422
            )
        posted = await posting.post(state.webhook_url, webhooks.payload(state.destination, [sent]))
        log.info("webhook %s of %s: %s", sent["type"], user_id, posted.status or posted.error)
        return JSONResponse({
            "webhookEventId": sent["webhookEventId"], "replyToken": sent.get("replyToken"),
            "status": posted.status, "error": posted.error,
        })  # fmt: skip

    @api.get("/_sandbox/line/users")
    async def residents() -> list[dict[str, Any]]:
        return [{"userId": r.user_id, "displayName": r.display_name, "language": r.language,
                 "following": r.following} for r in state.residents.values()]  # fmt: skip

    @api.get("/_sandbox/line/users/{user_id}/messages")
    async def messages(user_id: str) -> list[dict[str, Any]]:
        return _views(state.messages(user_id))

    @api.get("/_sandbox/line/users/{user_id}/events")
    async def events(user_id: str) -> list[dict[str, Any]]:
        return state.events.get(user_id, [])

    @api.get("/_sandbox/line/deliveries")
    async def deliveries() -> list[dict[str, Any]]:
        return _views(state.deliveries)

    @api.post("/_sandbox/line/faults")
    async def faults(request: FaultRequest) -> dict[str, int]:
        fault = Fault(request.status, request.delay_s, request.retry_after_s, request.calls)
        state.add_faults(fault, request.count)
        return {"queued": len(state.faults)}

    @api.get("/_sandbox/line/faults")
    async def pending_faults() -> dict[str, int]:
        return {"queued": len(state.faults)}

    @api.post("/_sandbox/line/reply-tokens/expire")
    async def expire() -> dict[str, int]:
        return {"expired": state.expire_reply_tokens()}

    @api.get("/_sandbox/line/chat", include_in_schema=False)
    async def chat() -> FileResponse:
        return FileResponse(STATIC / "chat.html", media_type="text/html")

    @api.get("/_sandbox/line/chat/{name}", include_in_schema=False)
    async def chat_asset(name: Literal["chat.js", "chat.css"]) -> FileResponse:
        return FileResponse(STATIC / name)

    @api.post("/_sandbox/line/reset")
    async def reset() -> dict[str, bool]:
        state.reset()
        return {"reset": True}

    return api


def _send(
    state: LineState,
    via: Via,
    to: tuple[str, ...],
    messages: list[dict[str, Any]],
    request_id: str,
    retry_key: str | None,
) -> Answer:
    """Deliver a push or multicast once per retry key."""
    if retry_key is not None:
        try:
            uuid.UUID(retry_key)
        except ValueError:
            return Answer(400, {"message": "The retry key must be a UUID"})
        accepted = state.retry_keys.get(retry_key)
        if accepted is not None:
            again = {"sentMessages": accepted.sent} if via == "push" else {}
            return Answer(409, {"message": "The retry key is already accepted", **again},
                          {"x-line-accepted-request-id": accepted.request_id})  # fmt: skip
    delivery = state.deliver(via, to, messages, retry_key, request_id)
    return Answer(200, {"sentMessages": delivery.sent} if via == "push" else {})


def _fault_answer(fault: Fault) -> Answer:
    assert fault.status is not None
    headers = {} if fault.retry_after_s is None else {"Retry-After": f"{fault.retry_after_s:g}"}
    return Answer(
        fault.status, {"message": FAULT_MESSAGES.get(fault.status, "Injected fault")}, headers
    )


def _new_event(state: LineState, user_id: str, action: webhooks.Action) -> dict[str, Any]:
    """A fresh event of `action` by the resident, remembered with its reply token."""
    resident = state.resident(user_id, action.language, action.display_name)
    unblocked = isinstance(action, webhooks.Follow) and not resident.following
    if isinstance(action, webhooks.Follow | webhooks.Unfollow):
        resident.following = isinstance(action, webhooks.Follow)
    now_ms = int(state.clock() * 1000)
    reply_token = (
        None if isinstance(action, webhooks.Unfollow) else state.issue_reply_token(user_id)
    )
    ids = webhooks.Ids(webhooks.ulid(now_ms), reply_token, state.message_id(), uuid.uuid4().hex)
    found = webhooks.event(action, user_id, ids, now_ms, unblocked)
    state.events.setdefault(user_id, []).append(found)
    return found


def _event(state: LineState, user_id: str, event_id: str | None) -> dict[str, Any] | None:
    """The resident's event with this id, or their last one."""
    for found in state.events.get(user_id, [])[::-1]:
        if event_id is None or found["webhookEventId"] == event_id:
            return found
    return None


def _views(deliveries: list[Delivery]) -> list[dict[str, Any]]:
    return [d.view() for d in deliveries]
