"""The server's one settings object, read from the environment (prefix `CHARGENET_`).

Built once in `main()` or the app factory and passed down; never created at import time.
`DATABASE_URL` and `MQTT_URL` are also accepted without the prefix, as deploy tools
usually spell them.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

from pydantic import AliasChoices, Field, FilePath, SecretStr, model_validator
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
    mqtt_failover_urls: list[str] = []
    """Brokers tried in turn after `mqtt_url` when a connection fails or is lost (a
    clustered broker's other nodes, or a standby): `'["mqtt://b:1883"]'`."""
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
    assignment_policy: Literal["greedy", "resolving"] = "greedy"
    """How options are ranked: "greedy" (each resident's cheapest place left) or
    "resolving" (requests of a batch solved with forecasts of those to come,
    `server.booking.resolving`; greedy when no forecast can be made or the solve is late)."""
    assignment_batch_s: float = Field(default=1.0, gt=0, le=10)
    """Requests arriving within this long are ranked by one solve ("resolving")."""
    assignment_deadline_s: float = Field(default=1.0, gt=0, le=30)
    """A batch's solve runs only the forecast draws predicted (from the draws measured
    before, `server.booking.pace`) to end this long after the batch closed, and cuts short
    a draw still running then; greedy when not one was solved."""
    assignment_solvers: int = Field(default=1, ge=1, le=64)
    """Solver processes of the live policy ("resolving"): a batch's draws are solved this
    many side by side. One per core the server can give them: each is a process of its
    own, about 60 MB resident (docs/operations.md)."""
    assignment_draws: int = Field(default=7, ge=1, le=50)
    """Forecast draws per solve: the more, the closer to the expected best, the slower."""
    assignment_seed: int | None = None
    """Seed of the forecast draws (tests, the benchmark's replay); None: random."""
    demand_expected_requests: int = Field(default=0, ge=0)
    """Requests expected over the event (an operator's estimate: e.g. evacuees x share with
    phones to charge); 0: the number of residents registered on LINE."""
    demand_announced_at: datetime | None = None
    """When the event's announcement went out (the arrival profile's start); None: the
    first request the server ranks."""
    demand_refresh_s: float = Field(default=300.0, gt=0)
    """How often the live policy's forecast reads the registry again (two grouped queries):
    registrations made since change the areas' weights and the expected total."""
    demand_burst_share: float = Field(default=0.5, ge=0, le=1)
    """Share of the requests in the first burst after the announcement."""
    demand_burst_s: float = Field(default=900.0, gt=0)
    demand_tail_s: float = Field(default=4 * 3600.0, gt=0)
    """The rest arrive evenly over this long after the announcement."""
    move_grace_s: float = Field(default=180.0, ge=0)
    """Capacity lost by a device report moves bookings once the loss has lasted this long
    (at once for windows starting sooner): a gateway's brief disconnect moves nobody."""
    offline_move_after_s: float = Field(default=7200.0, ge=0)
    """Bookings at ports merely out of sight (gateway offline, battery silent or stale) are
    held this long before they are moved: such a station very likely still charges, and a
    broker restart or a network drop is over within minutes. Unlike `move_grace_s` (for
    losses a device reported), this waits out no evidence, only silence."""
    escalate_after_min: int = Field(default=15, ge=1)
    incident_debounce_s: float = Field(default=60.0, ge=0)
    low_soc_pct: float = Field(default=15.0, gt=0, lt=100)
    """A battery below this SoC is low (an incident); critical below a third of it."""
    low_soc_clear_pct: float = Field(default=20.0, gt=0, le=100)
    """Hysteresis: a low battery clears only at or above this."""
    forecast_critical_min: float = Field(default=60.0, ge=0)
    """A battery forecast to run out sooner than this is a critical incident."""
    command_answer_s: float = Field(default=30.0, gt=0)
    """A gateway command unanswered this long is sent again (same cmd_id) ..."""
    command_sends: int = Field(default=5, ge=1)
    """... up to this many sends in all, then given up (logged, `ok` false)."""
    plausible_ts_ahead_s: float = Field(default=86_400.0, gt=0)
    """A gateway message measured further ahead of its receipt than this is refused (a
    clock a day fast is still a measurement; the year 2999 is not; skew is a metric) ..."""
    plausible_ts_behind_h: float = Field(default=720.0, gt=0)
    """... and so is one measured longer ago than this (see `ingest.plausibility`)."""
    plausible_seq_lead: int = Field(default=10_000, ge=1)
    """How far a seq may lead its gateway's highest applied seq, plus ..."""
    plausible_seq_rate: float = Field(default=100.0, gt=0)
    """... this many per second since the gateway was last heard."""
    seen_retention_h: float = Field(default=168.0, gt=0)
    """How long the ingest remembers each (gateway, seq) it applied (`ingest.retention`)."""
    timezone: str = "Asia/Tokyo"
    """Stations' local time zone: residents read times in it, 24-hour (13:30)."""
    opendata_licence: str = "CC BY 4.0"
    """The open-data feed's licence (`server.api.opendata`), as Japanese open data usually is."""
    opendata_licence_url: str = "https://creativecommons.org/licenses/by/4.0/deed.ja"
    reminder_before_min: int = Field(default=10, ge=1, le=120)
    """A resident is reminded this long before their window starts."""
    line_channel_secret: SecretStr = SecretStr("")
    """Signs the LINE webhook; empty refuses every webhook (401)."""
    line_channel_access_token: SecretStr = SecretStr("")
    line_api_url: str = "https://api.line.me"
    """The Messaging API's base URL (the sandbox's in the demo and the tests)."""
    map_tile_url: str = "https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png"
    """The maps' tile source (Leaflet's `{z}/{x}/{y}` template), GSI's standard map by default;
    when it cannot be reached the markers still show on a plain background."""
    map_tile_attribution: str = (
        '<a href="https://maps.gsi.go.jp/development/ichiran.html">地理院タイル</a>'
    )
    """Credit the tile source asks for, as HTML, shown in the map's corner."""
    map_outlines_file: FilePath | None = None
    """A GeoJSON file of municipal outlines (polygons, e.g. 国土数値情報's 行政区域 cut to the
    prefecture), drawn under the markers: the map still reads without tiles. None: none."""
    line_official_account_id: str = ""
    """The official account's basic id (`@123abcde`): station posters' QR codes open a chat
    with it, the station's name typed in (LINE's `oaMessage` URL)."""
    line_reply_within_s: float = Field(default=50.0, gt=0)
    """A reply token is used this long after its event; later the message is pushed."""
    line_requests_per_s: float = Field(default=1000.0, gt=0)
    """The Messaging API allows 2,000 requests a second for reply and push; we stay under."""
    line_multicast_requests_per_s: float = Field(default=80.0, gt=0)
    """LINE allows 200 multicast requests a second (each up to 500 residents), apart from
    reply and push. The sender's limiter lets a burst of this many through, then this many
    a second, so a second may see twice as many: 80 keeps that at 160."""
    resident_requests_per_min: int = Field(default=20, ge=1)
    """Messages a resident may send a minute; beyond it they are asked to wait."""
    line_login_channel_id: str = ""
    """The LINE Login channel (LIFF) whose ID tokens may book through the API (the `aud`
    LINE's verify endpoint checks); empty refuses ID tokens."""
    partner_key_hashes: dict[str, str] = Field(default_factory=dict)
    """Partner apps that book for their residents: name -> SHA-256 (hex) of its API key
    (`X-Api-Key`); the key itself is the partner's and is never stored here."""
    booking_requests_per_min: int = Field(default=10, ge=1)
    """Booking requests a minute through the API of one resident a LINE ID token proves."""
    booking_client_requests_per_min: int = Field(default=6000, ge=1)
    """Booking requests one client (a partner, the desk, LINE Login) may make a minute."""
    lineworks_api_url: str = "https://www.worksapis.com/v1.0"
    lineworks_token_url: str = "https://auth.worksmobile.com/oauth2/v2.0/token"
    lineworks_client_id: str = ""
    lineworks_client_secret: SecretStr = SecretStr("")
    lineworks_service_account: str = ""
    lineworks_private_key: SecretStr = SecretStr("")
    """The service account's RS256 private key (PEM); or give `lineworks_private_key_file`."""
    lineworks_private_key_file: Path | None = None
    lineworks_bot_id: str = ""
    lineworks_bot_secret: SecretStr = SecretStr("")
    """Signs LINE WORKS callbacks; empty refuses every callback (401)."""
    lineworks_requests_per_min: int = Field(default=240, ge=1)
    """The platform's limit per API (60 on the free plan)."""
    page_delay_s: dict[str, float] = Field(
        default_factory=lambda: {"gateway_offline": 120.0, "battery_silent": 120.0}
    )
    """Per incident kind, how long it must last before crews are paged: a broker restart
    opens a `gateway_offline` for every gateway and closes them within a minute."""
    delivery_timeout_s: float = Field(default=10.0, gt=0)
    """Every call to LINE and LINE WORKS gives up after this long (and is retried)."""
    delivery_backoff_max_s: float = Field(default=300.0, gt=0)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    intake_host: str = "127.0.0.1"
    intake_port: int = Field(default=8001, ge=0, le=65535)
    """`chargenet intake`, LINE's webhook in front of the server (`server.intake`)."""
    intake_server_url: str = "http://127.0.0.1:8000"
    """Where the intake hands its events on (the server's base URL)."""
    intake_journal: Path = Path("line-intake.sqlite3")
    """The intake's journal of events the server does not have yet: on a disk that stays."""

    @model_validator(mode="after")
    def _low_soc_has_hysteresis(self) -> Settings:
        if self.low_soc_clear_pct <= self.low_soc_pct:
            raise ValueError(
                f"low_soc_clear_pct ({self.low_soc_clear_pct}) must be above low_soc_pct "
                f"({self.low_soc_pct}), or a battery at the threshold would flap"
            )
        return self


READ_ELSEWHERE: Final = frozenset({
    "CHARGENET_LOG_LEVEL", "CHARGENET_LOG_FORMAT",  # chargenet.logs
    "CHARGENET_DEMO_HTTP_PORT", "CHARGENET_DEMO_MQTT_PORT",  # chargenet.demo
    "CHARGENET_TEST_POSTGRES_URL",  # the tests
})  # fmt: skip
"""`CHARGENET_` variables that other parts of chargenet read, not the server's settings."""


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """`CHARGENET_` variables nothing reads, each with the setting it may be a typo of.

    pydantic-settings ignores them, so `CHARGENET_REPORT_PERIOD=5` (for `..._S`) would
    silently leave the default in force; the server refuses to start instead.
    """
    prefix = "CHARGENET_"
    known = {f"{prefix}{name.upper()}" for name in Settings.model_fields} | READ_ELSEWHERE
    suffixes = sorted(k.removeprefix(prefix) for k in known)
    found = []
    for name in sorted(environ):
        upper = name.upper()
        if upper.startswith(prefix) and upper not in known:
            close = difflib.get_close_matches(upper.removeprefix(prefix), suffixes, 1, 0.75)
            found.append(f"{name} (did you mean {prefix}{close[0]}?)" if close else name)
    return found
