"""The one logging setup: UTC lines on stderr, or JSON lines for a log shipper.

`CHARGENET_LOG_LEVEL` picks the level; `CHARGENET_LOG_FORMAT=json` emits one JSON object
per line (`ts`, `level`, `logger`, `message`, and `exc` when there is a traceback).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time


class JsonFormatter(logging.Formatter):
    """Structured logs: one JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def text_formatter() -> logging.Formatter:
    formatter = logging.Formatter(
        "%(asctime)s.%(msecs)03dZ %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"
    )
    formatter.converter = time.gmtime
    return formatter


def setup_logging(level: str | None = None, fmt: str | None = None) -> None:
    """Configure the root logger once, for whichever part this process runs."""
    chosen = (fmt or os.environ.get("CHARGENET_LOG_FORMAT") or "text").lower()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else text_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("CHARGENET_LOG_LEVEL") or "INFO").upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin otherwise
