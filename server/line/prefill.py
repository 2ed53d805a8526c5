"""The message a station poster types into a resident's LINE chat, and how to read it back.

One function writes it (the posters' QR codes) and one reads it (the conversation), so the
two cannot drift apart: a scanned poster is always "book at this station".
"""

from __future__ import annotations

import re
from typing import Final

POSTER_KEYWORD: Final = "充電予約"
"""Japanese first, as residents read it; the station id after it is what is matched."""

_POSTER_RE: Final = re.compile(rf"^\s*{POSTER_KEYWORD}[\s\u3000]+([a-z0-9][a-z0-9_-]{{0,63}})\s*$")


def poster_message(station_id: str) -> str:
    """`充電予約 ozu-01`: short, so the QR stays small, and unambiguous (ids are unique)."""
    return f"{POSTER_KEYWORD} {station_id}"


def poster_station(text: str) -> str | None:
    """The station id of a poster's message, or None for any other text."""
    found = _POSTER_RE.match(text)
    return found.group(1) if found else None
