"""The sandboxes' one settings file (TOML, written by `chargenet demo` or a test, mode 0600).

Secrets live in the file rather than on a command line, where `ps` would show them.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LineConfig(_Strict):
    channel_secret: SecretStr
    """Signs the webhooks the chat sends (`X-Line-Signature`)."""
    access_token: SecretStr
    """The channel access token the server must present."""
    webhook_url: str
    """Where residents' events go: the server's `/line/webhook`."""
    reply_token_ttl_s: float = Field(default=60.0, gt=0)
    login_channel_id: str = "1650000000"
    """The LINE Login channel whose ID tokens the sandbox issues and verifies."""


class WorksConfig(_Strict):
    client_id: str
    client_secret: SecretStr
    service_account: str
    public_key_pem: str
    """Verifies the service account's RS256 JWT at the token endpoint."""
    bot_id: str
    bot_secret: SecretStr
    """Signs the callbacks the channel view sends (`X-WORKS-Signature`)."""
    callback_url: str
    """Where button presses go: the server's `/lineworks/callback`."""
    token_ttl_s: float = Field(default=86400.0, gt=0)
    channels: dict[str, str] = Field(default_factory=dict)
    """Channel id -> a title for the web view (channels not listed are shown by id)."""
    listed_channels_only: bool = False
    """A send to a channel not in `channels` is a 404, as the platform answers for a channel
    the bot is not in; off, any channel id is taken."""
    users: dict[str, str] = Field(default_factory=dict)
    """Crew member id -> a name: who the web view offers to press buttons as."""
    domain_id: int = 10000001
    """The tenant's domain, in every callback's `source`."""
    requests_per_min: int | None = Field(default=None, ge=1)
    """The platform's rate limit of the message API (240 a minute, 60 on the free plan):
    a call beyond it in any sliding minute is a 429 with `Retry-After`; None, no limit."""


class SandboxConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    line: LineConfig
    lineworks: WorksConfig


def load(path: Path) -> SandboxConfig:
    """Read and validate the file; a bad key names itself (`lineworks.bot_idd`)."""
    with path.open("rb") as file:
        return SandboxConfig.model_validate(tomllib.load(file))
