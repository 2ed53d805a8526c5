"""When a row is tried again: exponential backoff with full jitter, `Retry-After` honoured.

Full jitter (a uniform draw below the exponential bound) spreads the retries of many rows
that failed together, so a platform coming back from an outage is not hit by all of them
at once. The bound doubles per attempt from `BASE_S` up to the cap
(`settings.delivery_backoff_max_s`). A `Retry-After` from the platform is a floor, even
above the cap: sending earlier would only be refused again.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Final

BASE_S: Final = 1.0
"""The bound of the first retry's delay."""


def retry_delay_s(
    attempt: int, cap_s: float, retry_after_s: float | None = None, draw: float | None = None
) -> float:
    """Seconds to wait before the next attempt, after `attempt` (1 = the first) failed.

    `draw` in [0, 1) is the jitter (random when None), given by tests.
    """
    bound = min(cap_s, BASE_S * 2.0 ** min(max(attempt - 1, 0), 62))
    jitter = (random.random() if draw is None else draw) * bound
    return max(jitter, retry_after_s or 0.0)


def retry_after_s(headers: Mapping[str, str], now: datetime) -> float | None:
    """`Retry-After` in seconds from now (a number or an HTTP date); None when absent."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None
