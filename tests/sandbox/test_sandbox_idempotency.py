"""Idempotency-Key: required on writes, replay without a second write, 409 on reuse, 24 h window."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from devstack.sandbox.testing import SandboxHandle

ENABLE = "/v1/partner/menus/items/enable"


def _enabled(sandbox: SandboxHandle, item: int) -> bool:
    value: bool = sandbox.state(398)["business"]["item"][str(item)]["enabled"]
    return value


def test_replay_returns_recorded_answer_without_second_write(sandbox: SandboxHandle, client: httpx.Client) -> None:
    body = {"ids": [101], "isEnabled": False}
    first = client.patch(ENABLE, json=body, headers={"Idempotency-Key": "same"})
    # Change the item behind the key's back: a replay must not write it again.
    client.patch(ENABLE, json={"ids": [101], "isEnabled": True}, headers={"Idempotency-Key": "other"})
    second = client.patch(ENABLE, json={"isEnabled": False, "ids": [101]}, headers={"Idempotency-Key": "same"})
    assert first.status_code == second.status_code == 200
    assert first.json()["data"] == second.json()["data"]
    assert first.json()["request_id"] != second.json()["request_id"]
    assert _enabled(sandbox, 101) is True
    calls = sandbox.calls()
    assert [(c["applied"], c["replayed"]) for c in calls] == [(True, False), (True, False), (False, True)]
    assert calls[2]["idempotency_key"] == "same" and calls[2]["request_id"] == second.json()["request_id"]


def test_same_key_different_body_is_409(sandbox: SandboxHandle, client: httpx.Client) -> None:
    client.patch(ENABLE, json={"ids": [101], "isEnabled": False}, headers={"Idempotency-Key": "k"})
    r = client.patch(ENABLE, json={"ids": [102], "isEnabled": False}, headers={"Idempotency-Key": "k"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "state_idempotency_conflict"
    assert _enabled(sandbox, 102) is True
    r = client.patch("/v1/partner/menus/categories/enable", json={"ids": [101]}, headers={"Idempotency-Key": "k"})
    assert r.json()["error"]["code"] == "state_idempotency_conflict"


def test_missing_key_is_rejected_on_every_write(client: httpx.Client) -> None:
    for method, path in [
        ("PATCH", ENABLE),
        ("PATCH", "/v1/partner/menus/sections/6825/visibilities"),
        ("POST", "/v1/partner/menus/publish"),
        ("POST", "/v1/partner/menus/sync"),
    ]:
        r = client.request(method, path, json={})
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "request_missing_idempotency_key"


def test_reads_ignore_the_key(client: httpx.Client) -> None:
    assert client.get("/v1/partner/menus").status_code == 200
    assert client.get("/v1/partner/menus", headers={"Idempotency-Key": "x" * 100}).status_code == 200


def test_key_longer_than_64_is_invalid(client: httpx.Client) -> None:
    body = {"ids": [101], "isEnabled": False}
    r = client.patch(ENABLE, json=body, headers={"Idempotency-Key": "k" * 65})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "request_invalid"
    assert "Idempotency-Key" in r.json()["error"]["message"]
    assert client.patch(ENABLE, json=body, headers={"Idempotency-Key": "k" * 64}).status_code == 200


def test_keys_are_scoped_per_credential(sandbox: SandboxHandle) -> None:
    body = {"ids": [101], "isEnabled": False}
    sandbox.add_credential("pk_398_second", "sk_second", 398)
    with sandbox.client(398) as first, httpx.Client(base_url=sandbox.url, auth=("pk_398_second", "sk_second")) as other:
        assert first.patch(ENABLE, json=body, headers={"Idempotency-Key": "shared"}).status_code == 200
        assert other.patch(ENABLE, json=body, headers={"Idempotency-Key": "shared"}).status_code == 200
    assert [c["applied"] for c in sandbox.calls()] == [True, True]


def test_disable_enable_disable_with_distinct_keys_all_apply(
    sandbox: SandboxHandle, client: httpx.Client, key: Callable[[], str]
) -> None:
    for flag in (False, True, False):
        client.patch(ENABLE, json={"ids": [101], "isEnabled": flag}, headers={"Idempotency-Key": key()})
    assert [c["applied"] for c in sandbox.calls()] == [True, True, True]
    assert _enabled(sandbox, 101) is False


def test_window_closes_after_24_hours(sandbox: SandboxHandle, client: httpx.Client) -> None:
    body = {"ids": [101], "isEnabled": False}
    client.patch(ENABLE, json=body, headers={"Idempotency-Key": "old"})
    sandbox.advance_clock(24 * 3600 + 1)
    r = client.patch(ENABLE, json={"ids": [102], "isEnabled": False}, headers={"Idempotency-Key": "old"})
    assert r.status_code == 200
    assert sandbox.calls()[-1]["applied"] is True


def test_failed_attempts_do_not_consume_the_key(sandbox: SandboxHandle, client: httpx.Client) -> None:
    body = {"ids": [101], "isEnabled": False}
    r = client.patch(ENABLE, json={"ids": [999999], "isEnabled": False}, headers={"Idempotency-Key": "k1"})
    assert r.status_code == 404
    assert client.patch(ENABLE, json=body, headers={"Idempotency-Key": "k1"}).status_code == 200
    sandbox.set_faults(downstream_rate=1.0)
    assert client.patch(ENABLE, json={"ids": [102]}, headers={"Idempotency-Key": "k2"}).status_code == 502
    sandbox.set_faults(downstream_rate=0.0)
    assert client.patch(ENABLE, json={"ids": [102]}, headers={"Idempotency-Key": "k2"}).status_code == 200
    assert sandbox.calls()[-1]["applied"] is True and sandbox.calls()[-1]["replayed"] is False
