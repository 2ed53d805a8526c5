"""The LINE WORKS sandbox over real HTTP with generated credentials, and the server settings
that point at it, for the bot's token and transport tests."""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from pydantic import SecretStr

from sandbox.config import WorksConfig
from sandbox.lineworks.api import router
from sandbox.lineworks.state import WorksState
from server.settings import Settings
from tests.conditions import wait_until
from tests.mosquitto import free_port


@dataclass(frozen=True)
class WorksSandbox:
    url: str
    config: WorksConfig
    private_pem: str

    @property
    def ttl_s(self) -> float:
        return self.config.token_ttl_s

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, f"{self.url}/_sandbox/lineworks{path}", json=body)
        response.raise_for_status()
        return response.json()

    def tokens(self) -> dict[str, int]:
        return dict(self.control("GET", "/tokens"))


def works_settings(works: WorksSandbox, **overrides: Any) -> Settings:
    config = works.config
    fields: dict[str, Any] = {
        "lineworks_api_url": f"{works.url}/lineworks/v1.0",
        "lineworks_token_url": f"{works.url}/lineworks/oauth2/v2.0/token",
        "lineworks_client_id": config.client_id,
        "lineworks_client_secret": config.client_secret,
        "lineworks_service_account": config.service_account,
        "lineworks_private_key": SecretStr(works.private_pem),
        "lineworks_bot_id": config.bot_id,
        "lineworks_bot_secret": config.bot_secret,
        "delivery_timeout_s": 2.0,
    }
    return Settings(**{**fields, **overrides})


@contextlib.contextmanager
def running_works(token_ttl_s: float = 3600.0) -> Iterator[WorksSandbox]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()  # fmt: skip
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    config = WorksConfig(
        client_id="client-test", client_secret=SecretStr(secrets.token_urlsafe(16)),
        service_account="test.serviceaccount@example", public_key_pem=public_pem,
        bot_id="5000001", bot_secret=SecretStr(secrets.token_urlsafe(16)),
        callback_url="http://127.0.0.1:9/lineworks/callback", token_ttl_s=token_ttl_s,
        channels={"ch-ozu": "大洲市"}, listed_channels_only=True,
    )  # fmt: skip
    app = FastAPI()
    app.include_router(router(WorksState(config)))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, "the sandbox listening")
    try:
        yield WorksSandbox(f"http://127.0.0.1:{port}", config, private_pem)
    finally:
        server.should_exit = True
        thread.join(10)
