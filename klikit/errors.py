"""Typed klikit errors, keyed on the envelope's ``error.code``.

The hierarchy tells a caller what to do with a failure::

    KlikitError
    ├── TransientError            retry later (backoff)
    │   ├── DownstreamUnavailable     downstream_unavailable (502)
    │   ├── InternalError             any other 5xx / unknown code with a 5xx status
    │   ├── KlikitTimeout             "timeout": connect / read / pool timeout (status None)
    │   ├── KlikitConnectionError     "connection_error": refused, reset, dropped mid-response
    │   └── NotEnvelopeError          "not_envelope": an answer that is not klikit's envelope
    ├── RateLimited               rate_limit_exceeded (429); ``retry_after`` in seconds
    └── PermanentError            never retried; dead-letter
        ├── RequestInvalid, MissingIdempotencyKey, InvalidRange,
        │   ResourceNotFound, ResourceUnmapped, InvalidTransition, IdempotencyConflict
        ├── AuthError                 auth_*
        │   └── AuthMissing, InvalidCredential, Revoked, Forbidden
        └── UnknownClientError        unknown code with a 4xx (or no usable) status

:func:`error_for` is the one pure classifier: the code first (the REF table, plus the
PROSE upper-case spellings as aliases), then, for a code it does not know, the status.

:class:`ClientUsageError` is not a klikit answer at all: the client refused to send.

No error text ever carries a secret: the client never puts headers into an error, and
the server's message is passed through the registered-secret scrubber.
"""

from __future__ import annotations

from typing import Any

from config.logging import scrub

__all__ = [
    "AuthError",
    "AuthMissing",
    "ClientUsageError",
    "DownstreamUnavailable",
    "Forbidden",
    "IdempotencyConflict",
    "InternalError",
    "InvalidCredential",
    "InvalidRange",
    "InvalidTransition",
    "KlikitConnectionError",
    "KlikitError",
    "KlikitTimeout",
    "MissingIdempotencyKey",
    "NotEnvelopeError",
    "PermanentError",
    "RateLimited",
    "RequestInvalid",
    "ResourceNotFound",
    "ResourceUnmapped",
    "Revoked",
    "TransientError",
    "UnknownClientError",
    "error_for",
]


class ClientUsageError(ValueError):
    """The client refused a call locally, before sending anything (a programming or data error)."""


class KlikitError(Exception):
    """A klikit call that did not succeed.

    ``status`` is the HTTP status (None when no response arrived), ``code`` klikit's
    ``error.code`` (or one of the local codes ``timeout``, ``connection_error``,
    ``not_envelope``), ``request_id`` the envelope's id for klikit support, ``attempts``
    how many times the client sent the request in this call, ``details`` the envelope's
    optional ``error.details``.
    """

    default_code: str = "unknown"

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
        attempts: int = 1,
    ) -> None:
        self.status = status
        self.code = code if code else self.default_code
        self.message = scrub(str(message))
        self.request_id = request_id
        self.retry_after = retry_after
        self.details = details
        self.attempts = attempts
        super().__init__(self.message)

    @property
    def transient(self) -> bool:
        """True when a later retry may succeed (transient errors and rate limits)."""
        return isinstance(self, (TransientError, RateLimited))

    def __str__(self) -> str:
        status = "no response" if self.status is None else f"HTTP {self.status}"
        text = f"{self.code} ({status})"
        if self.message:
            text += f": {self.message}"
        if self.request_id:
            text += f" [request_id={self.request_id}]"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r}, "
            f"request_id={self.request_id!r}, attempts={self.attempts!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep the keyword-only attributes across pickling (Dramatiq, multiprocessing).
        return (
            _rebuild,
            (type(self), self.message, self.status, self.code, self.request_id, self.retry_after, self.details),
            {"attempts": self.attempts},
        )


def _rebuild(
    cls: type[KlikitError],
    message: str,
    status: int | None,
    code: str,
    request_id: str | None,
    retry_after: float | None,
    details: dict[str, Any] | None,
) -> KlikitError:
    return cls(message, status=status, code=code, request_id=request_id, retry_after=retry_after, details=details)


# --- transient -------------------------------------------------------------------------------------------


class TransientError(KlikitError):
    """Retry later, with backoff."""

    default_code = "internal"


class DownstreamUnavailable(TransientError):
    default_code = "downstream_unavailable"


class InternalError(TransientError):
    default_code = "internal"


class KlikitTimeout(TransientError):
    default_code = "timeout"


class KlikitConnectionError(TransientError):
    default_code = "connection_error"


class NotEnvelopeError(TransientError):
    default_code = "not_envelope"


# --- rate limit ------------------------------------------------------------------------------------------


class RateLimited(KlikitError):
    """429: wait ``retry_after`` seconds (when klikit sent one) and retry."""

    default_code = "rate_limit_exceeded"


# --- permanent -------------------------------------------------------------------------------------------


class PermanentError(KlikitError):
    """Never retried: the same request will fail the same way."""

    default_code = "unknown"


class RequestInvalid(PermanentError):
    default_code = "request_invalid"


class MissingIdempotencyKey(PermanentError):
    default_code = "request_missing_idempotency_key"


class InvalidRange(PermanentError):
    default_code = "request_invalid_range"


class ResourceNotFound(PermanentError):
    default_code = "resource_not_found"


class ResourceUnmapped(PermanentError):
    default_code = "resource_unmapped"


class InvalidTransition(PermanentError):
    default_code = "state_invalid_transition"


class IdempotencyConflict(PermanentError):
    default_code = "state_idempotency_conflict"


class AuthError(PermanentError):
    """auth_*: the credential is missing, wrong, revoked or lacks the scope."""

    default_code = "auth_unknown"


class AuthMissing(AuthError):
    default_code = "auth_missing"


class InvalidCredential(AuthError):
    default_code = "auth_invalid_credential"


class Revoked(AuthError):
    default_code = "auth_revoked"


class Forbidden(AuthError):
    default_code = "auth_forbidden"


class UnknownClientError(PermanentError):
    """A code this client does not know, with a status that does not say "retry"."""

    default_code = "unknown"


# --- the classifier --------------------------------------------------------------------------------------

#: REF codes (the live contract) and the client's own local codes.
CODE_TABLE: dict[str, type[KlikitError]] = {
    "auth_missing": AuthMissing,
    "auth_invalid_credential": InvalidCredential,
    "auth_revoked": Revoked,
    "auth_forbidden": Forbidden,
    "request_invalid": RequestInvalid,
    "request_missing_idempotency_key": MissingIdempotencyKey,
    "request_invalid_range": InvalidRange,
    "resource_not_found": ResourceNotFound,
    "resource_unmapped": ResourceUnmapped,
    "state_invalid_transition": InvalidTransition,
    "state_idempotency_conflict": IdempotencyConflict,
    "rate_limit_exceeded": RateLimited,
    "downstream_unavailable": DownstreamUnavailable,
    "internal": InternalError,
    "timeout": KlikitTimeout,
    "connection_error": KlikitConnectionError,
    "not_envelope": NotEnvelopeError,
}

#: PROSE (upper-case) spellings and the enable pages' upstream ``not_found``; the original code is kept on the error.
CODE_ALIASES: dict[str, str] = {
    "MISSING_AUTH": "auth_missing",
    "INVALID_CREDENTIALS": "auth_invalid_credential",
    "FORBIDDEN_SCOPE": "auth_forbidden",
    "REQUEST_INVALID": "request_invalid",
    "RESOURCE_NOT_FOUND": "resource_not_found",
    "INVALID_TRANSITION": "state_invalid_transition",
    "IDEMPOTENCY_KEY_CONFLICT": "state_idempotency_conflict",
    "RATE_LIMITED": "rate_limit_exceeded",
    "DOWNSTREAM_UNAVAILABLE": "downstream_unavailable",
    "INTERNAL": "internal",
    "not_found": "resource_not_found",
}


def class_for(status: int | None, code: str | None) -> type[KlikitError]:
    """The error class for a (status, code) pair; see :func:`error_for`."""
    if code:
        cls = CODE_TABLE.get(code) or CODE_TABLE.get(CODE_ALIASES.get(code, ""))
        if cls is not None:
            return cls
        if code.startswith("auth_"):
            return AuthError
    if status is not None:
        if 500 <= status <= 599:
            return InternalError
        if status == 429:
            return RateLimited
    return UnknownClientError


def error_for(
    status: int | None,
    code: str | None,
    message: str,
    request_id: str | None,
    retry_after: float | None = None,
) -> KlikitError:
    """Build the typed error for one klikit answer. Pure: no I/O, no state.

    The code decides first (REF table, then PROSE aliases, then any ``auth_*`` prefix);
    a code it does not know (or none) falls back on the status: 5xx → :class:`InternalError`,
    429 → :class:`RateLimited`, anything else → :class:`UnknownClientError` (permanent).
    """
    cls = class_for(status, code)
    return cls(message, status=status, code=code or None, request_id=request_id, retry_after=retry_after)
