"""A real `chargenet sandbox` process for tests: fresh secrets, a client for its control API,
and the server settings that point a server at it.

`Sandbox(workdir)` writes `sandbox.toml` (mode 0600) with a generated LINE channel secret and
access token, LINE WORKS client credentials, service account, RSA key pair and bot secret,
starts the sandbox on a free port and waits for its `sandbox listening on ...` line. The
server's port is known only later: `point_at(server_url)` sends webhooks and callbacks there.
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import subprocess
from pathlib import Path
from typing import Any, Final, Literal, TypedDict

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.system.harness import STARTUP_S, Child

CHANNELS: Final = {
    "crew-ozu": "大洲市 保守班 / Ozu crew",
    "group-nanyo": "南予 応援グループ / Nanyo support group",
    "hq-ehime": "愛媛県 災害対策本部 / Ehime HQ",
}
CREW: Final = {"crew-tanaka": "田中 / Tanaka", "crew-suzuki": "鈴木 / Suzuki"}
NOWHERE: Final = "http://127.0.0.1:9"
"""Where webhooks and callbacks go until `point_at`: a refused connection."""
READY: Final = "sandbox listening on "
Platform = Literal["line", "lineworks"]


class Sent(TypedDict):
    """The control API's answer to a resident's action: the event and the server's status
    (None, with `error`, when the server could not be reached)."""

    webhookEventId: str
    replyToken: str | None
    status: int | None
    error: str | None


class Sandbox(Child):
    def __init__(
        self,
        workdir: Path,
        reply_token_ttl_s: float = 60.0,
        token_ttl_s: float = 86400.0,
        channels: dict[str, str] = CHANNELS,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.line_channel_secret = secrets.token_hex(16)
        self.line_access_token = secrets.token_urlsafe(32)
        self.works_client_id = f"client-{secrets.token_hex(4)}"
        self.works_client_secret = secrets.token_urlsafe(24)
        self.works_service_account = f"{secrets.token_hex(4)}.serviceaccount@chargenet-test"
        self.works_bot_id = str(secrets.randbelow(9_000_000) + 1_000_000)
        self.works_bot_secret = secrets.token_urlsafe(24)
        self.line_login_channel_id = str(secrets.randbelow(9_000_000_000) + 1_000_000_000)
        private_pem, public_pem = _key_pair()
        self.private_key_file = _private(workdir / "service-account.pem", private_pem)
        text = "\n".join([
            'host = "127.0.0.1"', "port = 0", "", "[line]",
            f"channel_secret = {_toml(self.line_channel_secret)}",
            f"access_token = {_toml(self.line_access_token)}",
            f"webhook_url = {_toml(NOWHERE + '/line/webhook')}",
            f"reply_token_ttl_s = {reply_token_ttl_s}",
            f"login_channel_id = {_toml(self.line_login_channel_id)}", "", "[lineworks]",
            f"client_id = {_toml(self.works_client_id)}",
            f"client_secret = {_toml(self.works_client_secret)}",
            f"service_account = {_toml(self.works_service_account)}",
            f"public_key_pem = {_toml(public_pem)}",
            f"bot_id = {_toml(self.works_bot_id)}",
            f"bot_secret = {_toml(self.works_bot_secret)}",
            f"callback_url = {_toml(NOWHERE + '/lineworks/callback')}",
            f"token_ttl_s = {token_ttl_s}",
            "channels = " + _toml_table(channels), "users = " + _toml_table(CREW), "",
        ])  # fmt: skip
        self.config_path = _private(workdir / "sandbox.toml", text)
        super().__init__(
            ["sandbox", "--config", str(self.config_path)],
            workdir / "sandbox.log",
            stdout=subprocess.PIPE,
        )
        try:
            self.url = self._read_url(STARTUP_S)
        except Exception:
            self.stop()
            raise
        self._http = httpx.Client(base_url=self.url, timeout=30)

    def _read_url(self, timeout_s: float) -> str:
        stdout = self.process.stdout
        assert stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            if not selector.select(timeout_s):
                raise RuntimeError(f"no sandbox within {timeout_s}s:\n{self.log_text()}")
        line = stdout.readline().decode()
        if not line.startswith(READY):
            raise RuntimeError(f"the sandbox did not start ({line!r}):\n{self.log_text()}")
        return line.removeprefix(READY).strip()

    @property
    def server_env(self) -> dict[str, str]:
        """The server's settings (`server/settings.py`) for talking to this sandbox."""
        return {
            "CHARGENET_LINE_CHANNEL_SECRET": self.line_channel_secret,
            "CHARGENET_LINE_CHANNEL_ACCESS_TOKEN": self.line_access_token,
            "CHARGENET_LINE_API_URL": f"{self.url}/line",
            "CHARGENET_LINE_LOGIN_CHANNEL_ID": self.line_login_channel_id,
            "CHARGENET_LINEWORKS_API_URL": f"{self.url}/lineworks/v1.0",
            "CHARGENET_LINEWORKS_TOKEN_URL": f"{self.url}/lineworks/oauth2/v2.0/token",
            "CHARGENET_LINEWORKS_CLIENT_ID": self.works_client_id,
            "CHARGENET_LINEWORKS_CLIENT_SECRET": self.works_client_secret,
            "CHARGENET_LINEWORKS_SERVICE_ACCOUNT": self.works_service_account,
            "CHARGENET_LINEWORKS_PRIVATE_KEY_FILE": str(self.private_key_file),
            "CHARGENET_LINEWORKS_BOT_ID": self.works_bot_id,
            "CHARGENET_LINEWORKS_BOT_SECRET": self.works_bot_secret,
        }

    def stop(self) -> int:
        if hasattr(self, "_http"):
            self._http.close()
        return super().stop()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """JSON in, JSON out; raises on a 4xx/5xx answer."""
        answer = self._http.request(method, path, json=body)
        answer.raise_for_status()
        return answer.json()

    def set_urls(
        self, line_webhook_url: str | None = None, lineworks_callback_url: str | None = None
    ) -> None:
        urls = {
            "line_webhook_url": line_webhook_url,
            "lineworks_callback_url": lineworks_callback_url,
        }
        self.call("POST", "/_sandbox/config", urls)

    def point_at(self, server_url: str) -> None:
        """Send webhooks and callbacks to the server's `/line/webhook` and `/lineworks/callback`."""
        self.set_urls(f"{server_url}/line/webhook", f"{server_url}/lineworks/callback")

    # LINE: a resident's actions, signed and posted to the webhook URL.

    def line_send(self, user_id: str, event: dict[str, Any]) -> Sent:
        """`{"type": "text"|"location"|"postback"|"follow"|"unfollow"|"sticker"|"image", ...}`
        (+ `"language"`), or `{"redeliver": true}` for the resident's last event again."""
        sent: Sent = self.call("POST", f"/_sandbox/line/users/{user_id}/send", event)
        return sent

    def line_text(self, user_id: str, text: str, language: str | None = None) -> Sent:
        return self.line_send(user_id, _given(type="text", text=text, language=language))

    def line_location(
        self,
        user_id: str,
        latitude: float,
        longitude: float,
        title: str | None = None,
        address: str | None = None,
    ) -> Sent:
        where = _given(latitude=latitude, longitude=longitude, title=title, address=address)
        return self.line_send(user_id, {"type": "location", **where})

    def line_postback(self, user_id: str, data: str) -> Sent:
        return self.line_send(user_id, {"type": "postback", "data": data})

    def line_follow(self, user_id: str, language: str | None = None) -> Sent:
        return self.line_send(user_id, _given(type="follow", language=language))

    def line_unfollow(self, user_id: str) -> Sent:
        return self.line_send(user_id, {"type": "unfollow"})

    def line_redeliver(self, user_id: str, webhook_event_id: str | None = None) -> Sent:
        """The resident's last event (or the one named) again, `isRedelivery` true."""
        return self.line_send(user_id, _given(redeliver=True, webhookEventId=webhook_event_id))

    # LINE: what the platform saw.

    def line_messages(self, user_id: str) -> list[dict[str, Any]]:
        """`{"via": "reply"|"push"|"multicast", "messages", "retry_key", "at", ...}` in
        arrival order: what the resident saw, each accepted request once."""
        found: list[dict[str, Any]] = self.call("GET", f"/_sandbox/line/users/{user_id}/messages")
        return found

    def line_deliveries(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.call("GET", "/_sandbox/line/deliveries")
        return found

    def line_id_token(self, user_id: str, expires_in_s: float = 3600.0) -> str:
        """The resident's LINE Login ID token, as a LIFF app would get it."""
        issued = self.call("POST", f"/_sandbox/line/users/{user_id}/id-token",
                           {"expires_in_s": expires_in_s})  # fmt: skip
        token: str = issued["idToken"]
        return token

    def line_expire_reply_tokens(self) -> int:
        expired: int = self.call("POST", "/_sandbox/line/reply-tokens/expire")["expired"]
        return expired

    # LINE WORKS: what crews see, and their presses.

    def works_channel(self, channel_id: str) -> list[dict[str, Any]]:
        """`{"content", "at"}` of each message the bot sent to the channel, oldest first."""
        found: list[dict[str, Any]] = self.call(
            "GET", f"/_sandbox/lineworks/channels/{channel_id}/messages")  # fmt: skip
        return found

    def works_user(self, user_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.call(
            "GET", f"/_sandbox/lineworks/users/{user_id}/messages")  # fmt: skip
        return found

    def works_press(self, channel_id: str | None, user_id: str, postback: str) -> dict[str, Any]:
        """`user_id` presses the newest button carrying `postback` in the channel (or their
        1:1 talk): a signed callback; `{"status": <server's>, "callback": ...}`."""
        pressed: dict[str, Any] = self.call("POST", "/_sandbox/lineworks/press", _given(
            channelId=channel_id, userId=user_id, postback=postback))  # fmt: skip
        return pressed

    def works_revoke_tokens(self) -> int:
        revoked: int = self.call("POST", "/_sandbox/lineworks/tokens/revoke")["revoked"]
        return revoked

    def works_expire_tokens(self) -> int:
        expired: int = self.call("POST", "/_sandbox/lineworks/tokens/expire")["expired"]
        return expired

    # Both platforms.

    def faults(
        self,
        platform: Platform,
        count: int = 1,
        status: int | None = None,
        delay_s: float = 0.0,
        retry_after_s: float | None = None,
        calls: tuple[str, ...] | None = None,
    ) -> None:
        """The platform's next `count` calls fail with `status`, hang `delay_s` first, or
        both: LINE's reply/push/multicast, LINE WORKS's message endpoints, unless `calls`
        names others (LINE: "loading", "profile"; LINE WORKS: "token")."""
        body = _given(count=count, status=status, delay_s=delay_s,
                      retry_after_s=retry_after_s, calls=calls)  # fmt: skip
        self.call("POST", f"/_sandbox/{platform}/faults", body)

    def queued_faults(self, platform: Platform) -> int:
        """The faults no call has met yet (a hung call has met its own)."""
        queued: int = self.call("GET", f"/_sandbox/{platform}/faults")["queued"]
        return queued

    def reset(self) -> None:
        """Both platforms forget what they were sent and the faults queued."""
        for platform in ("line", "lineworks"):
            self.call("POST", f"/_sandbox/{platform}/reset")


def _given(**fields: Any) -> dict[str, Any]:
    """The fields a caller gave (None: left to the sandbox's default)."""
    return {key: value for key, value in fields.items() if value is not None}


def _key_pair() -> tuple[str, str]:
    """A fresh RSA key for the LINE WORKS service account: (private PKCS8, public) PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()  # fmt: skip
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


def _toml(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


def _toml_table(table: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in table.items()) + " }"


def _private(path: Path, text: str) -> Path:
    """Write a file only this user can read, created so from the start."""
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(text)
    return path
