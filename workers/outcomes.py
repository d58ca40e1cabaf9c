"""The one outcome policy: what to do when klikit answers a call with an error (design.md section 4). Pure.

:func:`classify` places an error; :func:`decide_outcome` turns it, with the call's failure history, into
the step the caller takes. Flush, publish, the visibility and read-back reads and the store
operations all ask :func:`decide_outcome`; they differ only in what they do with its answer (a flush
defers its message, an operation sleeps in place).

| outcome                                   | action        | decide_outcome                                 |
|-------------------------------------------|---------------|------------------------------------------------|
| 2xx                                       | APPLIED       |                                                |
| downstream_unavailable, 5xx, timeout, ... | RETRY         | wait a jittered backoff, DEAD_LETTER once the  |
|                                           |               | failures outlast the policy's age or attempts  |
| rate_limit_exceeded (429)                 | RATE_LIMITED  | wait what ``Retry-After`` asks                 |
| auth_* (401/403)                          | AUTH_STOP     | dead-letter and block the credential           |
| any other permanent code, unknown 4xx     | DEAD_LETTER   | dead-letter                                    |
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class RetryPolicy:
    """How long a failing call keeps being retried, and how far apart."""

    min_backoff_ms: int
    max_backoff_ms: int
    max_age_ms: int | None = None
    """A call failing for this long since its first failure is dead-lettered (``None``: no age limit)."""
    max_attempts: int | None = None
    """A call that failed this many times is dead-lettered (``None``: no count limit)."""
    outage_max_delay_ms: int | None = None
    """During an outage, no wait is longer than this (the breaker's probe pace)."""

    @classmethod
    def from_settings(cls, settings: Any, *, max_age: bool = True, max_attempts: int | None = None) -> RetryPolicy:
        return cls(
            min_backoff_ms=settings.retry_min_backoff_ms,
            max_backoff_ms=settings.retry_max_backoff_ms,
            max_age_ms=int(settings.retry_max_age_s * 1000) if max_age else None,
            max_attempts=max_attempts,
            outage_max_delay_ms=settings.breaker_max_open_ms,
        )


@dataclass(frozen=True)
class Failures:
    """A retryable call's failure history, this failure included."""

    attempts: int
    first_ms: int
    now_ms: int
    outage: bool = False
    """klikit is down for this business (the breaker is open): nothing ages out meanwhile."""
    open_ms: int | None = None
    """The breaker has just opened for this long: the next try comes when it half-opens."""


@dataclass(frozen=True)
class NextStep:
    action: Action
    """RETRY and RATE_LIMITED: try again after ``delay_ms``; DEAD_LETTER; AUTH_STOP (dead-letter, block)."""
    delay_ms: int = 0
    expired: bool = False
    """A retryable failure the policy gave up on (its action is DEAD_LETTER)."""


def decide_outcome(
    error: KlikitError, policy: RetryPolicy, failures: Failures | None = None, rand: float = 0.5
) -> NextStep:
    """The step to take after ``error``.

    ``failures`` is the history of a retryable call (``None``: its first failure, now);
    ``rand`` in [0, 1) is the caller's jitter, so that this stays pure.
    """
    action = classify(error)
    if action is Action.RATE_LIMITED:
        return NextStep(action, retry_after_ms(error))
    if action is not Action.RETRY:
        return NextStep(action)
    delay = retry_delay_ms(policy, failures or Failures(attempts=1, first_ms=0, now_ms=0), rand)
    if delay is None:
        return NextStep(Action.DEAD_LETTER, expired=True)
    return NextStep(Action.RETRY, delay)


def retry_delay_ms(policy: RetryPolicy, failures: Failures, rand: float) -> int | None:
    """How long a retryable failure waits before its next try; ``None`` once the policy gives up."""
    aged = policy.max_age_ms is not None and failures.now_ms - failures.first_ms >= policy.max_age_ms
    counted = policy.max_attempts is not None and failures.attempts >= policy.max_attempts
    if counted or (aged and not failures.outage):
        return None
    delay = failures.open_ms or backoff_ms(
        failures.attempts, min_ms=policy.min_backoff_ms, max_ms=policy.max_backoff_ms, rand=rand
    )
    if failures.outage and policy.outage_max_delay_ms is not None:
        delay = min(delay, policy.outage_max_delay_ms)
    return delay


def retry_after_ms(error: KlikitError, default_s: float = 1.0) -> int:
    """The wait klikit asked for with ``Retry-After`` (``default_s`` when it named none), in ms."""
    return int((error.retry_after or default_s) * 1000)


def backoff_ms(attempt: int, *, min_ms: int, max_ms: int, rand: float) -> int:
    """Exponential backoff with full jitter: uniform in [0, min(max, min * 2**attempt)].

    ``rand`` is a number in [0, 1) supplied by the caller, so that this stays pure.
    """
    ceiling = min(max_ms, min_ms * (2 ** max(0, min(attempt, 30))))
    return max(min_ms // 4, int(ceiling * rand))
