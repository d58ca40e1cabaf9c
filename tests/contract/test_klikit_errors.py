"""The pure classifier ``error_for``: code first, then status; and what an error shows."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.logging import register_secrets
from klikit import errors as E
from klikit.errors import CODE_ALIASES, CODE_TABLE, error_for

REF_CODES: list[tuple[str, int | None, type[E.KlikitError], type[E.KlikitError]]] = [
    # code, REF status, exact class, family
    ("auth_missing", 401, E.AuthMissing, E.AuthError),
    ("auth_invalid_credential", 401, E.InvalidCredential, E.AuthError),
    ("auth_revoked", 403, E.Revoked, E.AuthError),
    ("auth_forbidden", 403, E.Forbidden, E.AuthError),
    ("request_invalid", 400, E.RequestInvalid, E.PermanentError),
    ("request_missing_idempotency_key", 400, E.MissingIdempotencyKey, E.PermanentError),
    ("request_invalid_range", 400, E.InvalidRange, E.PermanentError),
    ("resource_not_found", 404, E.ResourceNotFound, E.PermanentError),
    ("resource_unmapped", 404, E.ResourceUnmapped, E.PermanentError),
    ("state_invalid_transition", 409, E.InvalidTransition, E.PermanentError),
    ("state_idempotency_conflict", 409, E.IdempotencyConflict, E.PermanentError),
    ("rate_limit_exceeded", 429, E.RateLimited, E.RateLimited),
    ("downstream_unavailable", 502, E.DownstreamUnavailable, E.TransientError),
    ("timeout", None, E.KlikitTimeout, E.TransientError),
    ("connection_error", None, E.KlikitConnectionError, E.TransientError),
    ("not_envelope", 502, E.NotEnvelopeError, E.TransientError),
]

statuses = st.one_of(st.none(), st.integers(min_value=100, max_value=599))
unknown_codes = st.one_of(
    st.none(),
    st.just(""),
    st.text(max_size=40).filter(lambda c: c not in CODE_TABLE and c not in CODE_ALIASES and not c.startswith("auth_")),
)


@pytest.mark.parametrize(("code", "status", "cls", "family"), REF_CODES)
def test_every_ref_code_maps_to_its_class(
    code: str, status: int | None, cls: type[E.KlikitError], family: type[E.KlikitError]
) -> None:
    err = error_for(status, code, "m", "req_1")
    assert type(err) is cls
    assert isinstance(err, family)
    assert err.code == code
    assert err.status == status
    assert err.request_id == "req_1"
    assert err.message == "m"
    assert cls.default_code == code


def test_table_covers_every_reference_code() -> None:
    assert {c for c, *_ in REF_CODES} | {"internal"} == set(CODE_TABLE)


@given(status=statuses, code=st.sampled_from(sorted(CODE_TABLE)))
def test_a_known_code_wins_over_any_status(status: int | None, code: str) -> None:
    assert type(error_for(status, code, "", None)) is CODE_TABLE[code]


@given(status=statuses, code=unknown_codes, message=st.text(max_size=50), retry_after=st.none() | st.floats(0, 1e6))
def test_an_unknown_code_is_classified_by_status(
    status: int | None, code: str | None, message: str, retry_after: float | None
) -> None:
    err = error_for(status, code, message, None, retry_after)
    if status is not None and 500 <= status <= 599:
        assert type(err) is E.InternalError
        assert err.transient
    elif status == 429:
        assert type(err) is E.RateLimited
        assert err.transient
        assert err.retry_after == retry_after
    else:
        assert type(err) is E.UnknownClientError
        assert isinstance(err, E.PermanentError)
        assert not err.transient
    assert err.code == (code or err.default_code)


@given(status=statuses, suffix=st.text(min_size=1, max_size=20))
def test_an_unknown_auth_code_is_an_auth_error(status: int | None, suffix: str) -> None:
    code = "auth_" + suffix
    err = error_for(status, code, "", None)
    assert isinstance(err, E.AuthError)
    assert not err.transient


@pytest.mark.parametrize(("alias", "code"), sorted(CODE_ALIASES.items()))
def test_prose_spellings_are_aliases(alias: str, code: str) -> None:
    err = error_for(400, alias, "", None)
    assert type(err) is CODE_TABLE[code]
    assert err.code == alias  # the code as klikit sent it is kept


@given(status=statuses, code=st.none() | st.text(max_size=40))
def test_families_are_disjoint(status: int | None, code: str | None) -> None:
    err = error_for(status, code, "", None)
    families = [isinstance(err, f) for f in (E.TransientError, E.RateLimited, E.PermanentError)]
    assert families.count(True) == 1


def test_client_usage_error_is_a_value_error_not_a_klikit_error() -> None:
    assert issubclass(E.ClientUsageError, ValueError)
    assert not issubclass(E.ClientUsageError, E.KlikitError)


def test_str_and_repr_scrub_registered_secrets() -> None:
    secret = "sk_very_secret_value_1234"
    register_secrets([secret])
    err = error_for(401, "auth_invalid_credential", f"bad secret {secret}", "req_9")
    assert secret not in str(err)
    assert secret not in repr(err)
    assert "auth_invalid_credential" in str(err)
    assert "HTTP 401" in str(err)
    assert "req_9" in str(err)


def test_errors_survive_pickling_with_their_attributes() -> None:
    err = error_for(429, "rate_limit_exceeded", "slow down", "req_2", 1.5)
    err.attempts = 3
    err.details = {"limit": 300}
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is E.RateLimited
    assert (back.status, back.code, back.message, back.request_id, back.retry_after, back.attempts, back.details) == (
        429,
        "rate_limit_exceeded",
        "slow down",
        "req_2",
        1.5,
        3,
        {"limit": 300},
    )
