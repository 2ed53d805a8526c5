"""Errors the server raises on purpose; the API turns each into a 4xx with a machine code.

```
ServerError                 code
├── NotFound                not_found: what and which
├── Conflict                conflict / already_booked / window_full / ...: why
├── Invalid                 invalid: the field and why
├── Unauthorized            unauthorized
├── Forbidden               forbidden: who may not do what
├── RateLimited             rate_limited: and when to try again
└── Unavailable             unavailable: a platform we ask could not answer
```
"""

from __future__ import annotations


class ServerError(Exception):
    """Base: carries an HTTP status and a machine-readable code."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(ServerError):
    status = 404
    code = "not_found"


class Conflict(ServerError):
    status = 409
    code = "conflict"


class Invalid(ServerError):
    status = 422
    code = "invalid"

    def __init__(self, message: str, code: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message, code)
        self.field = field
        """The offending field, when one is to blame (the API's `field`, as validation's)."""


class Unauthorized(ServerError):
    status = 401
    code = "unauthorized"


class Forbidden(ServerError):
    status = 403
    code = "forbidden"


class RateLimited(ServerError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(ServerError):
    """A platform we depend on for the answer could not be reached."""

    status = 503
    code = "unavailable"
