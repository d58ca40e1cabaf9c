"""Authentication and scopes: every auth error code, and secrets never reach the call record."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import pytest

from devstack.sandbox.testing import SandboxHandle

ENABLE = "/v1/partner/menus/items/enable"
BODY = {"ids": [101], "isEnabled": False}


def _error(r: httpx.Response) -> str:
    code: str = r.json()["error"]["code"]
    return code


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer abc", "Basic", "Basic !!!not-base64!!!", "Basic " + base64.b64encode(b"no-colon").decode()],
)
def test_missing_or_malformed_header_is_auth_missing(sandbox: SandboxHandle, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    r = httpx.get(sandbox.url + "/v1/partner/menus", headers=headers)
    assert r.status_code == 401
    assert _error(r) == "auth_missing"


@pytest.mark.parametrize("auth", [("pk_nobody", "sk_398_sandbox"), ("pk_398", "wrong-secret")])
def test_unknown_key_or_wrong_secret_is_auth_invalid_credential(sandbox: SandboxHandle, auth: tuple[str, str]) -> None:
    r = httpx.get(sandbox.url + "/v1/partner/menus", auth=auth)
    assert r.status_code == 401
    assert _error(r) == "auth_invalid_credential"


def test_revoked_credential_is_auth_revoked(sandbox: SandboxHandle) -> None:
    r = httpx.get(sandbox.url + "/v1/partner/menus", auth=("pk_398_revoked", "sk_revoked"))
    assert r.status_code == 403
    assert _error(r) == "auth_revoked"


def test_revoked_with_wrong_secret_is_still_invalid_credential(sandbox: SandboxHandle) -> None:
    r = httpx.get(sandbox.url + "/v1/partner/menus", auth=("pk_398_revoked", "guess"))
    assert r.status_code == 401
    assert _error(r) == "auth_invalid_credential"


def test_read_only_credential_reads_but_cannot_write(sandbox: SandboxHandle, key: Callable[[], str]) -> None:
    auth = ("pk_398_readonly", "sk_readonly")
    assert httpx.get(sandbox.url + "/v1/partner/menus", auth=auth).status_code == 200
    r = httpx.patch(sandbox.url + ENABLE, json=BODY, auth=auth, headers={"Idempotency-Key": key()})
    assert r.status_code == 403
    assert _error(r) == "auth_forbidden"
    r = httpx.patch(
        sandbox.url + "/v1/partner/menus/items/101/visibilities",
        json={"visibilities": {"1": True}},
        auth=auth,
        headers={"Idempotency-Key": key()},
    )
    assert _error(r) == "auth_forbidden"
    r = httpx.get(sandbox.url + "/v1/partner/brands", auth=auth)
    assert _error(r) == "auth_forbidden"
    assert sandbox.state(398)["business"]["item"]["101"]["enabled"] is True


def test_credentials_added_and_revoked_at_run_time(sandbox: SandboxHandle) -> None:
    public = sandbox.add_credential("pk_extra", "sk_extra", 398, scopes=["menus:read"])
    assert "secret_key" not in public
    assert httpx.get(sandbox.url + "/v1/partner/menus", auth=("pk_extra", "sk_extra")).status_code == 200
    sandbox.add_credential("pk_extra", "sk_extra", 398, scopes=["menus:read"], revoked=True)
    r = httpx.get(sandbox.url + "/v1/partner/menus", auth=("pk_extra", "sk_extra"))
    assert _error(r) == "auth_revoked"


def test_rotated_secret_stops_working_at_once(sandbox: SandboxHandle) -> None:
    sandbox.add_credential("pk_398", "sk_rotated", 398)
    assert _error(httpx.get(sandbox.url + "/v1/partner/menus", auth=("pk_398", "sk_398_sandbox"))) == (
        "auth_invalid_credential"
    )
    assert httpx.get(sandbox.url + "/v1/partner/menus", auth=("pk_398", "sk_rotated")).status_code == 200


def test_secrets_never_in_call_record_or_errors(sandbox: SandboxHandle, key: Callable[[], str]) -> None:
    httpx.patch(
        sandbox.url + ENABLE, json=BODY, auth=("pk_398", "wrong-secret-xyz"), headers={"Idempotency-Key": key()}
    )
    r = httpx.patch(
        sandbox.url + ENABLE, json=BODY, auth=("pk_398", "sk_398_sandbox"), headers={"Idempotency-Key": key()}
    )
    assert r.status_code == 200
    dump = str(sandbox.calls()) + r.text
    assert "wrong-secret-xyz" not in dump
    assert "sk_398_sandbox" not in dump
    assert "Basic" not in dump
    unauth = sandbox.calls()[0]
    assert unauth["business_id"] is None and unauth["code"] == "auth_invalid_credential"
