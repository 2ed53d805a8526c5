"""The demo's stand-ins for LINE and LINE WORKS: fresh credentials, the sandbox's settings
file, and the server settings that point the server at the sandbox.

Every run generates its own secrets and its own RSA key for the LINE WORKS service account;
they are written only to files readable by this user (0600) in the data folder and passed to
the server through its environment, never printed or put on a command line.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DEMO_CHANNELS: Final = {
    "crew-ozu": "大洲市 保守班 / Ozu crew",
    "group-nanyo": "南予 応援グループ / Nanyo support group",
    "hq-ehime": "愛媛県 災害対策本部 / Ehime HQ",
}
"""The demo's LINE WORKS channels, which the demo registry's crew routes name."""
DEMO_CREW: Final = {
    "crew-tanaka": "田中 (大洲市 保守班)",
    "crew-suzuki": "鈴木 (南予 応援)",
    "hq-yamamoto": "山本 (愛媛県 本部)",
}
"""Who the crew view offers to press buttons as."""
OFFICIAL_ACCOUNT_ID: Final = "@chargenet-demo"
LOGIN_CHANNEL_ID: Final = "1650000000"
"""The demo's LINE Login channel (LIFF): the sandbox issues its residents' ID tokens."""


@dataclass(frozen=True)
class DemoPlatforms:
    """Where the sandbox listens and what the server must be told to use it."""

    config_path: Path
    url: str
    server_env: dict[str, str]
    webhook_url: str
    """Where the sandbox sends LINE's webhooks (the demo's `chargenet intake`)."""

    @property
    def chat_url(self) -> str:
        return f"{self.url}/_sandbox/line/chat"

    @property
    def crew_url(self) -> str:
        return f"{self.url}/_sandbox/lineworks/view"


def prepare(
    data_dir: Path, host: str, port: int, server_url: str, reach: str, webhook_url: str
) -> DemoPlatforms:
    """Write `sandbox.toml` and the service account's key; `reach` is how this machine
    addresses `host` (loopback for a wildcard); LINE's webhooks go to `webhook_url`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    line_secret, line_token = secrets.token_hex(16), secrets.token_urlsafe(32)
    client_id, client_secret = f"demo-{secrets.token_hex(6)}", secrets.token_urlsafe(24)
    account = f"{secrets.token_hex(4)}.serviceaccount@chargenet-demo"
    bot_id, bot_secret = str(secrets.randbelow(9_000_000) + 1_000_000), secrets.token_urlsafe(24)
    key_file = _private(data_dir / "lineworks-service-account.pem", private_pem)
    channels = "\n".join(f'"{cid}" = "{title}"' for cid, title in DEMO_CHANNELS.items())
    crew = "\n".join(f'"{uid}" = "{name}"' for uid, name in DEMO_CREW.items())
    config = _private(
        data_dir / "sandbox.toml",
        f'host = "{host}"\nport = {port}\n\n'
        f'[line]\nchannel_secret = "{line_secret}"\naccess_token = "{line_token}"\n'
        f'webhook_url = "{webhook_url}"\nlogin_channel_id = "{LOGIN_CHANNEL_ID}"\n\n'
        f'[lineworks]\nclient_id = "{client_id}"\nclient_secret = "{client_secret}"\n'
        f'service_account = "{account}"\npublic_key_pem = """\n{public_pem}"""\n'
        f'bot_id = "{bot_id}"\nbot_secret = "{bot_secret}"\n'
        f'callback_url = "{server_url}/lineworks/callback"\n\n'
        f"[lineworks.channels]\n{channels}\n\n[lineworks.users]\n{crew}\n",
    )
    url = f"http://{reach}:{port}"
    env = {
        "CHARGENET_LINE_CHANNEL_SECRET": line_secret,
        "CHARGENET_LINE_CHANNEL_ACCESS_TOKEN": line_token,
        "CHARGENET_LINE_API_URL": f"{url}/line",
        "CHARGENET_LINE_OFFICIAL_ACCOUNT_ID": OFFICIAL_ACCOUNT_ID,
        "CHARGENET_LINE_LOGIN_CHANNEL_ID": LOGIN_CHANNEL_ID,
        "CHARGENET_LINEWORKS_API_URL": f"{url}/lineworks/v1.0",
        "CHARGENET_LINEWORKS_TOKEN_URL": f"{url}/lineworks/oauth2/v2.0/token",
        "CHARGENET_LINEWORKS_CLIENT_ID": client_id,
        "CHARGENET_LINEWORKS_CLIENT_SECRET": client_secret,
        "CHARGENET_LINEWORKS_SERVICE_ACCOUNT": account,
        "CHARGENET_LINEWORKS_PRIVATE_KEY_FILE": str(key_file),
        "CHARGENET_LINEWORKS_BOT_ID": bot_id,
        "CHARGENET_LINEWORKS_BOT_SECRET": bot_secret,
    }
    return DemoPlatforms(config, url, env, webhook_url)


def _private(path: Path, text: str) -> Path:
    """Write `text` to a file only this user can read, created so from the start."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    return path.resolve()
