"""The intake's hand-on body: what goes in comes out, and only the intake can sign one."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest

from server.errors import Invalid, Unauthorized
from server.intake import wire
from server.line.events import Kind, Point, ResidentEvent
from server.line.inbox import Received
from tests.server.line.conftest import signature as line_signature

SECRET = secrets.token_urlsafe(24)
AT = datetime(2026, 12, 6, 13, 30, 0, 250_000, tzinfo=UTC)

POINT = Point(33.5066, 132.5446)
ITEMS = [
    Received(ResidentEvent("01A", "Uone", Kind.TEXT, 1_700_000_000_000, "r1", text="充電"), AT),
    Received(ResidentEvent("01B", "Uone", Kind.LOCATION, 2, "r2", True, point=POINT), AT),
    Received(ResidentEvent("01C", None, Kind.OTHER, 1_700_000_000_002, subtype="join"), AT),
]


def test_a_signed_body_reads_back_as_it_was_sent() -> None:
    body = wire.encode(ITEMS)
    assert wire.verified(SECRET, body, wire.signature(SECRET, body)) == ITEMS


@pytest.mark.parametrize("case", ["other secret", "body changed", "missing", "LINE's own"])
def test_a_body_not_signed_by_the_intake_is_refused(case: str) -> None:
    body = wire.encode(ITEMS)
    signed = {
        "other secret": wire.signature("not-the-secret", body),
        "body changed": wire.signature(SECRET, body.replace(b"01A", b"01Z")),
        "missing": "",
        "LINE's own": line_signature(body, SECRET),  # a LINE signature is not an intake's
    }[case]
    with pytest.raises(Unauthorized):
        wire.verified(SECRET, body, signed)


def test_no_secret_refuses_everything() -> None:
    body = wire.encode(ITEMS)
    with pytest.raises(Unauthorized):
        wire.verified("", body, wire.signature("", body))


NONSENSE_KIND = (b'{"events": [{"id": "x", "user": null, "redelivery": false, "receivedAt": 1,'
                 b' "body": {"kind": "nonsense"}}]}')  # fmt: skip


@pytest.mark.parametrize("body", [b"[]", b"{}", b'{"events": [{"id": "x"}]}', b"\xff",
                                  NONSENSE_KIND])  # fmt: skip
def test_a_signed_body_that_is_not_a_hand_on_is_invalid(body: bytes) -> None:
    with pytest.raises(Invalid):
        wire.verified(SECRET, body, wire.signature(SECRET, body))
