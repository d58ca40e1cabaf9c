"""What to do with a klikit outcome (design.md section 4). Pure.

| outcome                                   | action        |
|-------------------------------------------|---------------|
| 2xx                                       | APPLIED       |
| downstream_unavailable, 5xx, timeout, ... | RETRY         |
| rate_limit_exceeded (429)                 | RATE_LIMITED  |
| auth_* (401/403)                          | AUTH_STOP     |
| any other permanent code, unknown 4xx     | DEAD_LETTER   |
"""

from __future__ import annotations

import enum

from klikit.errors import AuthError, KlikitError, PermanentError, RateLimited, TransientError


class Action(enum.Enum):
    APPLIED = "applied"
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    DEAD_LETTER = "dead_letter"
    AUTH_STOP = "auth_stop"


def classify(error: BaseException | None) -> Action:
    """The action for a call that raised ``error`` (``None``: it succeeded)."""
    if error is None:
        return Action.APPLIED
    if isinstance(error, RateLimited):
        return Action.RATE_LIMITED
    if isinstance(error, AuthError):
        return Action.AUTH_STOP
    if isinstance(error, PermanentError):
        return Action.DEAD_LETTER
    if isinstance(error, TransientError):
        return Action.RETRY
    if isinstance(error, KlikitError):
        # A code the hierarchy does not place: by status, 5xx retried, 4xx dead-lettered.
        return Action.RETRY if (error.status or 500) >= 500 else Action.DEAD_LETTER
    return Action.RETRY


def retry_after_ms(error: KlikitError, default_s: float = 1.0) -> int:
    """The wait klikit asked for with ``Retry-After`` (``default_s`` when it named none), in ms."""
    return int((error.retry_after or default_s) * 1000)


def backoff_ms(attempt: int, *, min_ms: int, max_ms: int, rand: float) -> int:
    """Exponential backoff with full jitter: uniform in [0, min(max, min * 2**attempt)].

    ``rand`` is a number in [0, 1) supplied by the caller, so that this stays pure.
    """
    ceiling = min(max_ms, min_ms * (2 ** max(0, min(attempt, 30))))
    return max(min_ms // 4, int(ceiling * rand))
