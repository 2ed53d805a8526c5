"""What the intake hands the server: stored LINE events, signed, on `POST /line/relayed`.

The intake has already verified LINE's signature and parsed the events, so the server
neither parses LINE's JSON again nor trusts an unsigned sender: the body is signed with
the channel secret both sides hold, under a label of its own (a relayed body is never a
valid LINE webhook, nor the reverse). Each event carries when the intake received it,
since its reply token is good from then. A location's point travels along (the intake
keeps it in memory only); an event the intake read back from its journal after a restart
has none, and the resident is asked again, as the server does after its own crash.

    {"events": [{"id": "...", "user": "U..." | null, "redelivery": false,
                 "receivedAt": 1700000000.123, "body": {...stored body...},
                 "point": [33.5, 132.5]}]}
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

from server.errors import Invalid, Unauthorized
from server.line.events import Point, ResidentEvent
from server.line.inbox import Received

RELAYED_PATH: Final = "/line/relayed"
SIGNATURE_HEADER: Final = "x-chargenet-intake-signature"
_LABEL: Final = b"chargenet-intake\n"


def signature(secret: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), _LABEL + body, hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def encode(items: Sequence[Received]) -> bytes:
    return json.dumps(
        {"events": [_item(item) for item in items]}, ensure_ascii=False, separators=(",", ":")
    ).encode()


def verified(secret: str, body: bytes, signed: str) -> list[Received]:
    """The events of a body the intake signed with `secret`.

    Raises Unauthorized (bad signature, no secret) or Invalid (not a relayed body).
    """
    if not secret or not signed:
        raise Unauthorized(f"{SIGNATURE_HEADER} missing or no channel secret set")
    if not hmac.compare_digest(signature(secret, body), signed):
        raise Unauthorized(f"{SIGNATURE_HEADER} does not match the body")
    try:
        return [_read(raw) for raw in json.loads(body)["events"]]
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError,
            RecursionError) as exc:  # fmt: skip
        raise Invalid(f"not a relayed body ({type(exc).__name__})") from None


def _item(item: Received) -> dict[str, Any]:
    event = item.event
    found: dict[str, Any] = {
        "id": event.event_id, "user": event.user_id, "redelivery": event.redelivery,
        "receivedAt": item.received_at.timestamp(), "body": event.stored_body(),
    }  # fmt: skip
    if event.point is not None:
        found["point"] = [event.point.latitude, event.point.longitude]
    return found


def _read(raw: dict[str, Any]) -> Received:
    user = raw["user"]
    event = ResidentEvent.from_stored(
        str(raw["id"]), None if user is None else str(user), dict(raw["body"]),
        bool(raw["redelivery"]),
    )  # fmt: skip
    point = raw.get("point")
    if point is not None:
        event = replace(event, point=Point(float(point[0]), float(point[1])))
    return Received(event, datetime.fromtimestamp(float(raw["receivedAt"]), UTC))
