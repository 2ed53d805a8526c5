"""The Messaging API bodies the platform accepts: line-bot-sdk's own request models, plus the
documented limits those models leave out.

The models check shapes and types, at most 5 messages a request, 13 quick-reply items,
postback data of at most 300 characters and at most 500 multicast recipients. They do not
check a text's 5,000 characters, a Flex message's `altText` (1,500), a carousel's 12
bubbles, a bubble's 30 KB of JSON (a carousel's 50 KB), a quick-reply label's 20
characters or that recipients are user ids (`U` and 32 hex digits): this module does. A
body outside either is a 400 whose JSON names each problem, as the platform answers.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from typing import Any, Final, Literal

from linebot.v3.messaging import (
    Message,
    MulticastRequest,
    PushMessageRequest,
    ReplyMessageRequest,
    ShowLoadingAnimationRequest,
)
from pydantic.v1 import ValidationError

Api = Literal["reply", "push", "multicast", "loading"]
"""The Messaging API calls that take a body."""
MODELS: Final = {
    "reply": ReplyMessageRequest,
    "push": PushMessageRequest,
    "multicast": MulticastRequest,
    "loading": ShowLoadingAnimationRequest,
}
MAX_TEXT: Final = 5000
MAX_ALT_TEXT: Final = 1500
MAX_BUBBLES: Final = 12
MAX_BUBBLE_BYTES: Final = 30_000
MAX_CAROUSEL_BYTES: Final = 50_000
MAX_QUICK_REPLY_LABEL: Final = 20

USER_ID: Final = re.compile(r"U[0-9a-f]{32}")
STAND_IN: Final = {"type": "text", "text": "-"}
"""Takes a message's place while the envelope is checked."""
Detail = dict[str, str]
"""One problem as the platform reports it: `{"message": ..., "property": "messages[0].text"}`."""


class Invalid(Exception):
    """A refused body: the 400's JSON."""

    def __init__(self, details: list[Detail]) -> None:
        super().__init__(f"{len(details)} problem(s)")
        self.details = details

    def body(self) -> dict[str, Any]:
        return {
            "message": f"The request body has {len(self.details)} error(s)",
            "details": self.details,
        }


def validate(api: Api, body: object) -> dict[str, Any]:
    """`body` when the platform would take it for `api`; raise `Invalid` otherwise.

    The envelope is checked with stand-in messages and each message on its own, remembered
    by its JSON: the models take milliseconds a Flex carousel, and a bot sends the same
    messages to many residents.
    """
    if not isinstance(body, dict):
        raise Invalid([_detail("The request body must be a JSON object", "")])
    messages = body.get("messages")
    each: list[Any] = messages if isinstance(messages, list) else []
    envelope = {**body, "messages": [STAND_IN] * len(each)} if each else body
    problems = list(_model_problems(api, json.dumps(envelope, ensure_ascii=False)))
    for message in each:
        problems += _model_problems(None, json.dumps(message, ensure_ascii=False, sort_keys=True))
    if not problems:
        problems = [*user_id_problems(body), *limit_problems(each)]
    if problems:
        raise Invalid(problems)
    return body


@functools.lru_cache(maxsize=4096)
def _model_problems(api: Api | None, canonical: str) -> tuple[Detail, ...]:
    """What line-bot-sdk's model for `api` (a message for None) finds wrong with the JSON."""
    model = Message if api is None else MODELS[api]
    try:
        model.from_dict(json.loads(canonical))
    except ValidationError as error:
        return tuple(_detail(e["msg"], _path(e["loc"])) for e in error.errors())
    except ValueError as error:  # the models' own discriminator lookups
        return (_detail(str(error).split(". ")[0], ""),)
    return ()


def limit_problems(messages: list[Any]) -> Iterator[Detail]:
    """The documented limits these (already well-shaped) messages break."""
    for index, message in enumerate(messages):
        at = f"messages[{index}]"
        if message.get("type") == "text" and len(message["text"]) > MAX_TEXT:
            yield _detail(f"Length must be between 0 and {MAX_TEXT}", f"{at}.text")
        if message.get("type") == "flex":
            if len(message["altText"]) > MAX_ALT_TEXT:
                yield _detail(f"Length must be between 0 and {MAX_ALT_TEXT}", f"{at}.altText")
            yield from _flex_problems(message["contents"], f"{at}.contents")
        items = (message.get("quickReply") or {}).get("items") or []
        for number, item in enumerate(items):
            label = (item.get("action") or {}).get("label") or ""
            if len(label) > MAX_QUICK_REPLY_LABEL:
                yield _detail(f"Length must be between 0 and {MAX_QUICK_REPLY_LABEL}",
                              f"{at}.quickReply.items[{number}].action.label")  # fmt: skip


def _flex_problems(contents: dict[str, Any], at: str) -> Iterator[Detail]:
    carousel = contents.get("type") == "carousel"
    bubbles = contents["contents"] if carousel else [contents]
    if carousel and not 1 <= len(bubbles) <= MAX_BUBBLES:
        yield _detail(f"Size must be between 1 and {MAX_BUBBLES}", f"{at}.contents")
    if carousel and _size(contents) > MAX_CAROUSEL_BYTES:
        yield _detail(f"A carousel's JSON must be at most 50 KB ({_size(contents)} bytes)", at)
    for number, bubble in enumerate(bubbles):
        if _size(bubble) > MAX_BUBBLE_BYTES:
            where = f"{at}.contents[{number}]" if carousel else at
            yield _detail(f"A bubble's JSON must be at most 30 KB ({_size(bubble)} bytes)", where)


def _size(node: dict[str, Any]) -> int:
    """Bytes of compact UTF-8 JSON, as the platform measures a bubble."""
    return len(json.dumps(node, ensure_ascii=False, separators=(",", ":")).encode())


def user_id_problems(body: dict[str, Any]) -> Iterator[Detail]:
    """Recipients that are not LINE user ids (`U` and 32 hex digits)."""
    to = body.get("to")
    for number, user_id in enumerate([to] if isinstance(to, str) else to or []):
        if not USER_ID.fullmatch(user_id):
            yield _detail("Invalid user ID", "to" if isinstance(to, str) else f"to[{number}]")


def _path(loc: tuple[int | str, ...]) -> str:
    """`("messages", 0, "text")` as the platform writes it: `messages[0].text`."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _detail(message: str, where: str) -> Detail:
    return {"message": message, "property": where}
