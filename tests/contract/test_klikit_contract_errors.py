"""Every error code of the table, through the client, against the sandbox.

Codes the sandbox produces on its own are provoked for real; the others (downstream_unavailable on
demand, request_invalid_range, resource_unmapped, state_invalid_transition, internal, codes klikit
may add later) come from its script facility, which answers before the operation runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from klikit_support import BUSINESS, READONLY, REVOKED, SECRET, SECTION

from klikit import (
    AuthError,
    AuthMissing,
    ClientUsageError,
    DownstreamUnavailable,
    EnableUpdateRequest,
    Forbidden,
    IdempotencyConflict,
    InternalError,
    InvalidCredential,
    InvalidRange,
    InvalidTransition,
    KlikitClient,
    KlikitError,
    MissingIdempotencyKey,
    PermanentError,
    RateLimited,
    RequestInvalid,
    ResourceNotFound,
    ResourceUnmapped,
    RetryPolicy,
    Revoked,
    SyncRequest,
    SyncSection,
    TransientError,
    UnknownClientError,
    ZoneStore,
)

ENABLE_PATH = "/v1/partner/menus/items/enable"
BODY = EnableUpdateRequest(ids=[101], is_enabled=False)
MakeClient = Callable[..., KlikitClient]

# code, status, class, transient?
TABLE: list[tuple[str, int, type[KlikitError], bool]] = [
    ("auth_missing", 401, AuthMissing, False),
    ("auth_invalid_credential", 401, InvalidCredential, False),
    ("auth_revoked", 403, Revoked, False),
    ("auth_forbidden", 403, Forbidden, False),
    ("request_invalid", 400, RequestInvalid, False),
    ("request_missing_idempotency_key", 400, MissingIdempotencyKey, False),
    ("request_invalid_range", 400, InvalidRange, False),
    ("resource_not_found", 404, ResourceNotFound, False),
    ("resource_unmapped", 404, ResourceUnmapped, False),
    ("state_invalid_transition", 409, InvalidTransition, False),
    ("state_idempotency_conflict", 409, IdempotencyConflict, False),
    ("rate_limit_exceeded", 429, RateLimited, True),
    ("downstream_unavailable", 502, DownstreamUnavailable, True),
    ("internal", 500, InternalError, True),
    ("some_future_code", 503, InternalError, True),  # unknown code, 5xx
    ("some_future_code", 418, UnknownClientError, False),  # unknown code, 4xx
    ("some_future_throttle", 429, RateLimited, True),  # unknown code, 429
]


@pytest.mark.parametrize(("code", "status", "cls", "transient"), TABLE)
def test_every_code_of_the_table_is_typed(
    client: KlikitClient, sandbox: Any, code: str, status: int, cls: type[KlikitError], transient: bool
) -> None:
    attempts = client.retry_policy.attempts
    scripted = {"status": status, "code": code, "message": f"scripted {code}"}
    if status == 429:
        scripted["retry_after"] = 0
    sandbox.script("PATCH", ENABLE_PATH, [scripted] * attempts)
    with pytest.raises(cls) as info:
        client.enable("item", BODY, idempotency_key=f"k-{code}-{status}")
    err = info.value
    assert type(err) is cls
    assert (err.status, err.code, err.message) == (status, code, f"scripted {code}")
    assert err.transient is transient
    assert isinstance(err, TransientError | RateLimited) is transient
    assert isinstance(err, PermanentError) is not transient
    calls = sandbox.calls()
    assert err.attempts == len(calls) == (attempts if transient else 1)
    assert err.request_id == calls[-1]["request_id"]
    assert {c["idempotency_key"] for c in calls} == {f"k-{code}-{status}"}
    # the script answered; nothing was written
    assert sandbox.state(BUSINESS)["business"]["item"]["101"]["enabled"] is True


# --- the same codes, provoked for real ---------------------------------------------------------------------


def test_auth_missing(make_client: MakeClient, sandbox: Any) -> None:
    client = make_client(sandbox.url, partner_key="", secret=SECRET)
    with pytest.raises(AuthMissing) as info:
        client.list_brands()
    assert (info.value.status, info.value.code, info.value.attempts) == (401, "auth_missing", 1)


def test_auth_invalid_credential(make_client: MakeClient, sandbox: Any) -> None:
    client = make_client(sandbox.url, secret="sk_wrong_secret")
    with pytest.raises(InvalidCredential) as info:
        client.enable("item", BODY, idempotency_key="k")
    assert (info.value.status, info.value.code) == (401, "auth_invalid_credential")
    assert "sk_wrong_secret" not in str(info.value)


def test_auth_revoked(make_client: MakeClient, sandbox: Any) -> None:
    client = make_client(sandbox.url, *REVOKED)
    with pytest.raises(Revoked) as info:
        client.get_menu()
    assert (info.value.status, info.value.code) == (403, "auth_revoked")
    assert isinstance(info.value, AuthError)


def test_auth_forbidden_for_a_read_only_credential(make_client: MakeClient, sandbox: Any) -> None:
    client = make_client(sandbox.url, *READONLY)
    assert client.get_menu().status == 200  # menus:read is granted
    with pytest.raises(Forbidden) as info:
        client.enable("item", BODY, idempotency_key="k")
    assert (info.value.status, info.value.code, info.value.attempts) == (403, "auth_forbidden", 1)
    assert sandbox.state(BUSINESS)["business"]["item"]["101"]["enabled"] is True


def test_request_invalid_one_store_param(client: KlikitClient) -> None:
    with pytest.raises(RequestInvalid) as info:
        client.send("get_menu", params={"brand_id": 5297})
    assert info.value.status == 400
    assert "together" in info.value.message


def test_request_invalid_schedule_collision(client: KlikitClient, sandbox: Any) -> None:
    store = ZoneStore(brand_id=5297, branch_id=1293)
    mine = {"1": {"slots": [{"startTime": 800, "endTime": 1000}]}}
    other = {"1": {"slots": [{"startTime": 900, "endTime": 1100}]}}
    client.sync_menu_to_stores(
        SyncRequest(stores=[store], sections={SECTION: SyncSection(sequence=1, available_times=mine)}),
        idempotency_key="sync-a",
    )
    with pytest.raises(RequestInvalid) as info:
        client.sync_menu_to_stores(
            SyncRequest(stores=[store], sections={SECTION: SyncSection(sequence=1, available_times=other)}),
            idempotency_key="sync-b",
        )
    assert info.value.attempts == 1
    assert info.value.details is not None


def test_request_invalid_from_the_server_when_the_local_check_is_bypassed(client: KlikitClient) -> None:
    # send() takes raw dicts as they are: klikit's own validation answers
    with pytest.raises(RequestInvalid):
        client.send("enable_items", body={"ids": []}, idempotency_key="k-raw")


def test_missing_idempotency_key_is_refused_before_sending(client: KlikitClient, sandbox: Any) -> None:
    with pytest.raises(ClientUsageError):
        client.send("enable_items", body=BODY)
    with pytest.raises(ClientUsageError):
        client.send("enable_items", body=BODY, idempotency_key="k" * 65)
    assert sandbox.calls() == []


def test_resource_not_found_for_a_foreign_id(client: KlikitClient, sandbox: Any) -> None:
    with pytest.raises(ResourceNotFound) as info:
        client.enable("item", EnableUpdateRequest(ids=[101, 987_654_321], is_enabled=False), idempotency_key="k")
    assert (info.value.status, info.value.attempts) == (404, 1)
    assert sandbox.state(BUSINESS)["business"]["item"]["101"]["enabled"] is True  # nothing half-applied


def test_downstream_unavailable_for_real(client: KlikitClient, sandbox: Any) -> None:
    sandbox.set_faults(downstream_rate=1.0)
    with pytest.raises(DownstreamUnavailable) as info:
        client.enable("item", BODY, idempotency_key="k-down")
    assert (info.value.status, info.value.attempts) == (502, client.retry_policy.attempts)
    assert [c["fault"] for c in sandbox.calls()] == ["downstream"] * client.retry_policy.attempts
    assert sandbox.state(BUSINESS)["business"]["item"]["101"]["enabled"] is True


def test_rate_limit_for_real(make_client: MakeClient, sandbox: Any) -> None:
    sandbox.set_faults(rate_per_minute=60, rate_burst=1)
    client = make_client(sandbox.url, retry=RetryPolicy(attempts=1))
    client.list_brands()
    with pytest.raises(RateLimited) as info:
        client.list_brands()
    assert (info.value.status, info.value.code, info.value.attempts) == (429, "rate_limit_exceeded", 1)
    assert info.value.retry_after is not None
    assert info.value.retry_after >= 1
