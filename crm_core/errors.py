"""Domain errors; the web layer maps each to an HTTP status.

Each carries a stable machine `code` ("deal.lost_reason_required") beside its English message:
the pages translate the code (lib/i18n/errors.*.js) and show the message only for a code they
do not know. `params` fill the translation's "{name}" slots: plain strings and numbers only.
An error raised without a code gets its class's ("not_found", "forbidden", …).
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of the errors a service raises on purpose."""

    default_code = "error"

    def __init__(self, message: str, *, code: str | None = None, **params: str | int) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.params = params


class NotFound(DomainError):
    default_code = "not_found"


class Forbidden(DomainError):
    default_code = "forbidden"


class Conflict(DomainError):
    default_code = "conflict"


class Invalid(DomainError):
    default_code = "invalid"
