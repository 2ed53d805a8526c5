"""The gateway's one TOML file, validated so that a typo names its own key.

```toml
gateway_id = "shelter-gw-1"
store_path = "outbox.db"
report_period_s = 60
poll_period_s = 1.0          # 0: as fast as the line allows
health_listen = "127.0.0.1:9108"   # GET /healthz, GET /metrics; leave out for none

[mqtt]
url = "mqtt://broker:1883"   # mqtts:// for TLS
username = "shelter-gw-1"
password = "..."

[[bus]]
name = "rs485-1"
kind = "rtu"
port = "/dev/ttyUSB0"
baudrate = 19200
parity = "N"
stopbits = 2
units = [1, 2, 3]

[[bus]]
name = "lan"
kind = "tcp"
host = "192.0.2.10"
port = 502
units = [1]
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from gateway.errors import ConfigError
from protocol.topics import DEFAULT_PREFIX, NAME_RE


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttConfig(_Strict):
    url: str = "mqtt://127.0.0.1:1883"
    failover_urls: list[str] = []
    """Brokers tried in turn after `url` when a connection fails or is lost (the nodes of a
    clustered broker, or a standby): each attempt goes to the next."""
    username: str | None = None
    password: SecretStr | None = None
    prefix: str = DEFAULT_PREFIX
    client_id: str | None = None
    """Defaults to `chargenet-gw-{gateway_id}`: fixed, so the broker keeps the session."""
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    inflight: int = Field(default=50, ge=1, le=1000)
    """Messages awaiting PUBACK at once; the outbox holds the rest."""
    receipts: bool = True
    """Keep each message until the server's receipt says it is stored, not only until the
    broker's PUBACK (a broker may drop what it acknowledged); false for a server that
    sends no receipts."""
    resend_after_s: float = Field(default=60.0, gt=0)
    """With receipts: a message the broker took that no receipt covered after this long is
    sent again (as history)."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        return _broker_url(url)

    @field_validator("failover_urls")
    @classmethod
    def _check_failover(cls, urls: list[str]) -> list[str]:
        return [_broker_url(url) for url in urls]

    @property
    def endpoints(self) -> list[Endpoint]:
        """`url`, then each failover URL, as the publisher tries them."""
        return [_endpoint(url, self.ca_file is not None) for url in [self.url, *self.failover_urls]]


def _broker_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError("must look like mqtt://host:1883 or mqtts://host:8883")
    if parts.username or parts.password:
        raise ValueError("put credentials in mqtt.username and mqtt.password, not the URL")
    return url


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    tls: bool


def _endpoint(url: str, ca_given: bool) -> Endpoint:
    parts = urlsplit(url)
    tls = parts.scheme == "mqtts"
    return Endpoint(parts.hostname or "", parts.port or (8883 if tls else 1883), tls or ca_given)


class _BusBase(_Strict):
    name: str
    units: list[Annotated[int, Field(ge=1, le=247)]] = Field(min_length=1)
    timeout_s: float | None = Field(default=None, gt=0)
    """Response timeout; by default sized to the line (see poller.response_timeout)."""

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not NAME_RE.match(name):
            raise ValueError(f"must match {NAME_RE.pattern}")
        return name

    @field_validator("units")
    @classmethod
    def _check_units(cls, units: list[int]) -> list[int]:
        if len(set(units)) != len(units):
            raise ValueError("unit ids must be unique on a bus")
        return units


class RtuBus(_BusBase):
    kind: Literal["rtu"]
    port: str
    baudrate: int = Field(default=19200, ge=300, le=1_000_000)
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8


class TcpBus(_BusBase):
    kind: Literal["tcp"]
    host: str
    port: int = Field(default=502, ge=1, le=65535)


Bus = Annotated[RtuBus | TcpBus, Field(discriminator="kind")]


class GatewayConfig(_Strict):
    gateway_id: str
    store_path: Path = Path("gateway-outbox.db")
    report_period_s: float = Field(default=60.0, gt=0)
    """Every unit's state is published at least this often, changed or not."""
    poll_period_s: float = Field(default=1.0, ge=0)
    """Time between polls of one unit; 0 polls as fast as the line allows."""
    outbox_max_mb: float = Field(default=100.0, gt=0)
    """The outbox file's bound, WAL included: 100 MB holds a 72-hour outage of 24 batteries
    of 8 ports with nothing pruned (docs/performance.md)."""
    health_listen: str | None = None
    """`host:port` of `GET /healthz` and `GET /metrics` (`gateway.health`); none: off."""
    mqtt: MqttConfig = MqttConfig()
    bus: list[Bus] = Field(min_length=1)

    @field_validator("gateway_id")
    @classmethod
    def _check_id(cls, gateway_id: str) -> str:
        if not NAME_RE.match(gateway_id):
            raise ValueError(f"must match {NAME_RE.pattern}")
        return gateway_id

    @field_validator("health_listen")
    @classmethod
    def _check_listen(cls, listen: str | None) -> str | None:
        if listen is not None:
            host, _, port = listen.rpartition(":")
            if not host or not port.isdigit() or int(port) > 65535:
                raise ValueError("must look like 127.0.0.1:9108")
        return listen

    @field_validator("bus")
    @classmethod
    def _check_buses(cls, buses: list[RtuBus | TcpBus]) -> list[RtuBus | TcpBus]:
        names = [b.name for b in buses]
        if len(set(names)) != len(names):
            raise ValueError(f"bus names must be unique: {names}")
        ports = [b.port for b in buses if isinstance(b, RtuBus)]
        if len(set(ports)) != len(ports):
            raise ValueError("two buses on one serial port: list all its units on one bus")
        return buses

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"chargenet-gw-{self.gateway_id}"


def parse_config(data: dict[str, Any], base_dir: Path | None = None) -> GatewayConfig:
    """Validate a config mapping; ConfigError names the first bad key."""
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(_key_path(first["loc"]), first["msg"]) from None
    if base_dir is not None and not config.store_path.is_absolute():
        config = config.model_copy(update={"store_path": base_dir / config.store_path})
    return config


def load_config(path: Path) -> GatewayConfig:
    """Read and validate a TOML file; relative paths in it are relative to the file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{path} is not valid TOML: {exc}") from None
    return parse_config(data, path.parent)


def _key_path(loc: tuple[int | str, ...]) -> str:
    """('bus', 1, 'rtu', 'baudrate') -> 'bus[1].baudrate' (the union tag is not a key)."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("rtu", "tcp") and i > 0 and isinstance(loc[i - 1], int):
            continue
        else:
            out += f".{part}" if out else part
    return out
