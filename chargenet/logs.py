"""The one logging setup: `time level logger message` lines on stderr, UTC."""

from __future__ import annotations

import logging
import os
import sys
import time


def setup_logging(level: str | None = None) -> None:
    """Configure the root logger once, for whichever part this process runs."""
    formatter = logging.Formatter(
        "%(asctime)s.%(msecs)03dZ %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"
    )
    formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("CHARGENET_LOG_LEVEL") or "INFO").upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin otherwise
