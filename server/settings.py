"""The server's one settings object, read from the environment (prefix `CHARGENET_`).

Built once in `main()` or the app factory and passed down; never created at import time.
`DATABASE_URL` and `MQTT_URL` are also accepted without the prefix, as deploy tools
usually spell them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from protocol.topics import DEFAULT_PREFIX


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHARGENET_", extra="forbid", frozen=True)

    database_url: str = Field(
        default=f"sqlite+aiosqlite:///{Path.cwd() / 'chargenet.sqlite3'}",
        validation_alias=AliasChoices("CHARGENET_DATABASE_URL", "DATABASE_URL"),
    )
    """SQLite in the working folder by default; `postgresql+asyncpg://...` in production."""
    mqtt_url: str | None = Field(
        default="mqtt://127.0.0.1:1883",
        validation_alias=AliasChoices("CHARGENET_MQTT_URL", "MQTT_URL"),
    )
    """None (empty) runs the server without MQTT ingest (API only)."""
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_prefix: str = DEFAULT_PREFIX
    mqtt_client_id: str = "chargenet-server"
    """Fixed, with a persistent session: the broker keeps QoS 1 events while we restart."""
    mqtt_shared_group: str | None = None
    """Set on several server processes to share the ingest ($share/{group}/...)."""
    admin_token: SecretStr = SecretStr("")
    """Bearer token for admin endpoints; empty disables them (every call is 401)."""
    report_period_s: float = Field(default=60.0, gt=0)
    """The gateways' report period: a unit with no state for 3 periods is offline."""
    slot_minutes: int = Field(default=30, ge=5, le=240)
    booking_horizon_h: int = Field(default=12, ge=1, le=72)
    energy_per_phone_wh: float = Field(default=15.0, gt=0)
    no_show_grace_min: int = Field(default=10, ge=0, le=120)
    escalate_after_min: int = Field(default=15, ge=1)
    incident_debounce_s: float = Field(default=60.0, ge=0)
    command_answer_s: float = Field(default=30.0, gt=0)
    """A gateway command unanswered this long is sent again (same cmd_id) ..."""
    command_sends: int = Field(default=5, ge=1)
    """... up to this many sends in all, then given up (logged, `ok` false)."""
    seen_retention_h: float = Field(default=168.0, gt=0)
    """How long the ingest remembers each (gateway, seq) it applied (`ingest.retention`)."""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
