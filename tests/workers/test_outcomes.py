"""The outcome table of design.md section 4: every klikit code to its action."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from klikit.errors import error_for
from workers.outcomes import Action, backoff_ms, classify

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
