"""Why the bot cannot reach LINE WORKS; each becomes a retry of the message, never a crash.

```
WorksError
├── CredentialsMissing   the settings that are unset
├── PrivateKeyUnusable   why the service account's key cannot sign (never the key)
└── TokenRefused         the token endpoint's HTTP status and OAuth error code
```
"""

from __future__ import annotations


class WorksError(Exception):
    """Base of the LINE WORKS client's errors."""


class CredentialsMissing(WorksError):
    def __init__(self, settings: list[str]) -> None:
        super().__init__(f"LINE WORKS credentials not set: {', '.join(settings)}")
        self.settings = settings


class PrivateKeyUnusable(WorksError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"LINE WORKS private key unusable: {reason}")
        self.reason = reason


class TokenRefused(WorksError):
    """The token endpoint said no (or answered something that is not a token)."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(f"LINE WORKS token endpoint answered {status} {error}")
        self.status = status
        self.error = error
