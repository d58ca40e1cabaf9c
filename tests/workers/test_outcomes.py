"""The outcome table of design.md section 4: every klikit code to its action."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from klikit.errors import error_for
from workers.outcomes import Action, Failures, NextStep, RetryPolicy, backoff_ms, classify, decide_outcome

TABLE = {
    ("downstream_unavailable", 502): Action.RETRY,
    ("rate_limit_exceeded", 429): Action.RATE_LIMITED,
    ("state_idempotency_conflict", 409): Action.DEAD_LETTER,
    ("auth_missing", 401): Action.AUTH_STOP,
    ("auth_invalid_credential", 401): Action.AUTH_STOP,
    ("auth_revoked", 403): Action.AUTH_STOP,
    ("auth_forbidden", 403): Action.AUTH_STOP,
    ("request_invalid", 400): Action.DEAD_LETTER,
    ("request_missing_idempotency_key", 400): Action.DEAD_LETTER,
    ("request_invalid_range", 400): Action.DEAD_LETTER,
    ("resource_not_found", 404): Action.DEAD_LETTER,
    ("resource_unmapped", 404): Action.DEAD_LETTER,
    ("state_invalid_transition", 409): Action.DEAD_LETTER,
    ("internal", 500): Action.RETRY,
}


@pytest.mark.parametrize(("code", "status"), sorted(TABLE))
def test_documented_codes(code: str, status: int) -> None:
    assert classify(error_for(status, code, "m", "req_1")) is TABLE[(code, status)]


@given(
    st.text(min_size=1, max_size=20).filter(lambda c: (c, 0) not in {(k, 0) for k, _ in TABLE}), st.integers(400, 599)
)
def test_unknown_codes_go_by_status(code: str, status: int) -> None:
    action = classify(error_for(status, code, "m", None))
    if status == 429:
        assert action is Action.RATE_LIMITED
    elif status >= 500:
        assert action is Action.RETRY
    else:
        assert action is Action.DEAD_LETTER


def test_success_applies() -> None:
    assert classify(None) is Action.APPLIED


@given(st.integers(0, 40), st.floats(0, 0.999999))
def test_backoff_is_full_jitter_within_bounds(attempt: int, rand: float) -> None:
    delay = backoff_ms(attempt, min_ms=200, max_ms=30_000, rand=rand)
    assert 50 <= delay <= min(30_000, 200 * 2**attempt) or delay == 50


# --- decide_outcome: the step every caller takes ------------------------------------------------------

POLICY = RetryPolicy(min_backoff_ms=200, max_backoff_ms=30_000, max_age_ms=60_000, outage_max_delay_ms=3_000)
TRANSIENT = error_for(502, "downstream_unavailable", "m", "req_1")

failure_histories = st.builds(
    Failures,
    attempts=st.integers(1, 50),
    first_ms=st.integers(0, 1_000_000),
    now_ms=st.integers(1_000_000, 2_000_000),
    outage=st.booleans(),
    open_ms=st.one_of(st.none(), st.integers(1, 3_000)),
)


@given(failure_histories, st.floats(0, 0.999999))
def test_transient_failures_retry_until_they_age_out_except_in_an_outage(failures: Failures, rand: float) -> None:
    step = decide_outcome(TRANSIENT, POLICY, failures, rand)
    aged = failures.now_ms - failures.first_ms >= 60_000
    if aged and not failures.outage:
        assert step == NextStep(Action.DEAD_LETTER, expired=True)
        return
    assert step.action is Action.RETRY
    assert step.delay_ms > 0
    if failures.outage:
        assert step.delay_ms <= 3_000  # the breaker's probe pace
    if failures.open_ms:
        assert step.delay_ms == min(failures.open_ms, 3_000 if failures.outage else failures.open_ms)


@given(st.integers(1, 10), st.integers(1, 10))
def test_an_attempt_limit_dead_letters_the_failure_that_reaches_it(attempts: int, limit: int) -> None:
    policy = RetryPolicy(min_backoff_ms=200, max_backoff_ms=30_000, max_attempts=limit)
    step = decide_outcome(TRANSIENT, policy, Failures(attempts, 0, 0), 0.5)
    assert step.action is (Action.DEAD_LETTER if attempts >= limit else Action.RETRY)
    assert step.expired is (attempts >= limit)


@pytest.mark.parametrize(("code", "status"), sorted(TABLE))
def test_a_first_failure_follows_the_table(code: str, status: int) -> None:
    step = decide_outcome(error_for(status, code, "m", "req_1"), POLICY, Failures(1, 0, 0), 0.5)
    expected = TABLE[(code, status)]
    assert step.action is expected
    assert not step.expired


def test_a_rate_limit_waits_what_retry_after_asks() -> None:
    error = error_for(429, "rate_limit_exceeded", "m", "req_1", retry_after=7.0)
    assert decide_outcome(error, POLICY) == NextStep(Action.RATE_LIMITED, 7_000)
