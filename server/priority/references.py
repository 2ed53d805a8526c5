"""A registration's reference: the code a resident shows at the desk, or gives the
municipality for its list, so operators name a registration without its LINE user id.

Eight characters of the ticket alphabet (no 0/O, no 1/I/L): 31^8, about 850 billion, so a
guessed code is almost surely no one's, and one read aloud is typed right.
"""

from __future__ import annotations

import secrets
from typing import Final

from server.booking.capacity import TICKET_ALPHABET

REFERENCE_LENGTH: Final = 8


def new_reference() -> str:
    return "".join(secrets.choice(TICKET_ALPHABET) for _ in range(REFERENCE_LENGTH))


def normalised(reference: str) -> str:
    """As typed from a paper list: case and spaces or hyphens do not matter."""
    return "".join(c for c in reference.upper() if c not in " -")
