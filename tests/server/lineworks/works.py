"""Server settings pointing the bot's LINE WORKS client at a sandbox process, and what the
sandbox tells about the tokens it issued."""

from __future__ import annotations

from typing import Any

from server.settings import Settings
from tests.sandboxes import Sandbox


def works_settings(sandbox: Sandbox, **overrides: Any) -> Settings:
    """The settings a server would read from `sandbox.server_env`, calls timing out fast."""
    env = {key.removeprefix("CHARGENET_").lower(): value
           for key, value in sandbox.server_env.items()}  # fmt: skip
    return Settings(**{**env, "delivery_timeout_s": 1.0, **overrides})


def issued_tokens(sandbox: Sandbox) -> int:
    """How many access tokens the sandbox has handed out since it started."""
    issued: int = sandbox.call("GET", "/_sandbox/lineworks/tokens")["issued"]
    return issued
