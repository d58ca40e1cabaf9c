"""Injected faults: rate limit, downstream 502, hang, drop before/after the write, scripts, admin API."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from devstack.sandbox.testing import SandboxHandle, running_sandbox

ENABLE = "/v1/partner/menus/items/enable"
BODY = {"ids": [101], "isEnabled": False}


def _enabled(sandbox: SandboxHandle) -> bool:
    value: bool = sandbox.state(398)["business"]["item"]["101"]["enabled"]
    return value


def test_rate_limit_429_with_retry_after(sandbox: SandboxHandle, client: httpx.Client) -> None:
    sandbox.set_faults(rate_per_minute=60, rate_burst=2, rate_limit_headers=True)
    statuses = [client.get("/v1/partner/providers") for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    limited = statuses[2]
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-RateLimit-Limit"] == "60"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert int(limited.headers["X-RateLimit-Reset"]) >= int(time.time())
    assert "X-RateLimit-Limit" in statuses[0].headers
    assert sandbox.calls()[-1]["fault"] == "rate_limit"
    # Buckets are per credential: another business is not limited.
    with sandbox.client(1001) as other:
        assert other.get("/v1/partner/providers").status_code == 200


def test_rate_limit_headers_are_optional(sandbox: SandboxHandle, client: httpx.Client) -> None:
    sandbox.set_faults(rate_per_minute=1, rate_burst=1)
    client.get("/v1/partner/providers")
    limited = client.get("/v1/partner/providers")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert "X-RateLimit-Limit" not in limited.headers


def test_downstream_fault_is_502_without_write(
    sandbox: SandboxHandle, client: httpx.Client, key: Callable[[], str]
) -> None:
    sandbox.set_faults(downstream_rate=1.0)
    r = client.patch(ENABLE, json=BODY, headers={"Idempotency-Key": key()})
    assert r.status_code == 502 and r.json()["error"]["code"] == "downstream_unavailable"
    assert _enabled(sandbox) is True
    call = sandbox.calls()[-1]
    assert call["fault"] == "downstream" and call["applied"] is False and call["code"] == "downstream_unavailable"


def test_writes_only_spares_reads(sandbox: SandboxHandle, client: httpx.Client, key: Callable[[], str]) -> None:
    sandbox.set_faults(downstream_rate=1.0, writes_only=True)
    assert client.get("/v1/partner/providers").status_code == 200
    assert client.patch(ENABLE, json=BODY, headers={"Idempotency-Key": key()}).status_code == 502


def test_hang_applies_the_write_after_the_client_gave_up(sandbox: SandboxHandle, key: Callable[[], str]) -> None:
    sandbox.set_faults(hang_rate=1.0, hang_s=0.6)
    k = key()
    with sandbox.client(398, timeout=0.2) as impatient, pytest.raises(httpx.TimeoutException):
        impatient.patch(ENABLE, json=BODY, headers={"Idempotency-Key": k})
    sandbox.set_faults(hang_rate=0.0)
    deadline = time.monotonic() + 5
    while _enabled(sandbox) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _enabled(sandbox) is False
    call = sandbox.calls()[-1]
    assert call["fault"] == "hang" and call["applied"] is True and call["status"] == 200
    # The retry with the same key is a replay.
    with sandbox.client(398) as client:
        assert client.patch(ENABLE, json=BODY, headers={"Idempotency-Key": k}).status_code == 200
    assert sandbox.calls()[-1]["replayed"] is True


def test_hung_call_and_its_retry_write_once(sandbox: SandboxHandle, key: Callable[[], str]) -> None:
    sandbox.set_faults(hang_rate=1.0, hang_s=0.5)
    k = key()
    with sandbox.client(398, timeout=0.1) as impatient, pytest.raises(httpx.TimeoutException):
        impatient.patch(ENABLE, json=BODY, headers={"Idempotency-Key": k})
    sandbox.set_faults(hang_rate=0.0)
    with sandbox.client(398) as client:
        assert client.patch(ENABLE, json=BODY, headers={"Idempotency-Key": k}).status_code == 200
    deadline = time.monotonic() + 5
    while len(sandbox.calls()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    calls = sandbox.calls()
    assert sorted((c["applied"], c["replayed"]) for c in calls) == [(False, True), (True, False)]


@pytest.mark.parametrize(("phase", "applied"), [("before", False), ("after", True)])
def test_drop_closes_the_connection(
    sandbox: SandboxHandle, client: httpx.Client, key: Callable[[], str], phase: str, applied: bool
) -> None:
    sandbox.set_faults(drop_rate=1.0, drop_phase=phase)
    k = key()
    with pytest.raises(httpx.TransportError):
        client.patch(ENABLE, json=BODY, headers={"Idempotency-Key": k})
    sandbox.set_faults(drop_rate=0.0)
    assert _enabled(sandbox) is (not applied)
    call = sandbox.calls()[-1]
    assert call["fault"] == "drop" and call["status"] is None and call["applied"] is applied
    r = client.patch(ENABLE, json=BODY, headers={"Idempotency-Key": k})
    assert r.status_code == 200
    assert sandbox.calls()[-1]["replayed"] is applied
    assert _enabled(sandbox) is False


def test_latency_is_added(sandbox: SandboxHandle, client: httpx.Client) -> None:
    sandbox.set_faults(latency_ms=150)
    started = time.monotonic()
    assert client.get("/v1/partner/providers").status_code == 200
    assert time.monotonic() - started >= 0.15


def test_script_answers_in_order_then_normal(
    sandbox: SandboxHandle, client: httpx.Client, key: Callable[[], str]
) -> None:
    sandbox.script(
        "PATCH",
        ENABLE,
        [
            {"status": 429, "code": "rate_limit_exceeded", "retry_after": 3},
            {"status": 409, "code": "state_idempotency_conflict", "message": "scripted"},
            {"drop": True},
            {"status": 200, "data": {"scripted": True}},
        ],
    )
    first = client.patch(ENABLE, json=BODY, headers={"Idempotency-Key": key()})
    assert first.status_code == 429 and first.headers["Retry-After"] == "3"
    second = client.patch(ENABLE, json=BODY, headers={"Idempotency-Key": key()})
    assert second.status_code == 409 and second.json()["error"]["message"] == "scripted"
    with pytest.raises(httpx.TransportError):
        client.patch(ENABLE, json=BODY, headers={"Idempotency-Key": key()})
    fourth = client.patch(ENABLE, json=BODY, headers={"Idempotency-Key": key()})
    assert fourth.json()["data"] == {"scripted": True}
    assert _enabled(sandbox) is True
    assert client.patch(ENABLE, json=BODY, headers={"Idempotency-Key": key()}).json()["data"]["updated"] == 1
    assert _enabled(sandbox) is False
    calls = sandbox.calls()
    assert [c["fault"] for c in calls] == ["script", "script", "script", "script", None]
    assert [c["applied"] for c in calls] == [False, False, False, False, True]


def test_script_only_matches_its_path_and_can_be_cleared(
    sandbox: SandboxHandle, client: httpx.Client, key: Callable[[], str]
) -> None:
    sandbox.script("POST", "/v1/partner/menus/publish", [{"status": 502, "code": "downstream_unavailable"}])
    assert client.patch(ENABLE, json=BODY, headers={"Idempotency-Key": key()}).status_code == 200
    sandbox.clear_scripts()
    body = {"stores": [{"brandID": 5297, "branchID": 1293}], "providerIDs": [1]}
    assert client.post("/v1/partner/menus/publish", json=body, headers={"Idempotency-Key": key()}).status_code == 200


def test_call_record_filters(sandbox: SandboxHandle, client: httpx.Client, key: Callable[[], str]) -> None:
    client.get("/v1/partner/providers")
    client.patch(ENABLE, json=BODY, headers={"Idempotency-Key": "record-me"})
    with sandbox.client(1001) as other:
        other.get("/v1/partner/providers")
    calls = sandbox.calls()
    assert [c["seq"] for c in calls] == sorted(c["seq"] for c in calls)
    write = calls[1]
    assert write["method"] == "PATCH" and write["path"] == ENABLE and write["body"] == BODY
    assert write["idempotency_key"] == "record-me" and write["code"] is None and write["status"] == 200
    assert set(write) >= {"seq", "ts", "business_id", "request_id", "replayed", "applied", "fault"}
    assert [c["business_id"] for c in sandbox.calls(business_id=1001)] == [1001]
    assert sandbox.calls(since=write["seq"]) == calls[2:]
    sandbox.clear_calls()
    assert sandbox.calls() == []


def test_admin_fault_api(sandbox: SandboxHandle) -> None:
    config = sandbox.set_faults(downstream_rate=0.5, seed=7)
    assert config["downstream_rate"] == 0.5 and config["seed"] == 7
    assert sandbox.faults()["downstream_rate"] == 0.5
    for bad in ({"downstream_rate": 2}, {"drop_phase": "middle"}, {"nonsense": 1}, {"latency_ms": "x"}):
        r = httpx.put(sandbox.url + "/_sandbox/faults", json=bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "request_invalid"
    r = httpx.post(sandbox.url + "/_sandbox/script", json={"method": "PATCH", "path": ENABLE, "responses": [{}]})
    assert r.status_code == 400
    assert sandbox.clear_faults()["downstream_rate"] == 0.0
    sandbox.set_faults(downstream_rate=1.0)
    sandbox.reset()
    assert sandbox.faults()["downstream_rate"] == 0.0


def test_seeded_faults_repeat() -> None:
    def run() -> list[int]:
        with running_sandbox(downstream_rate=0.5, seed=42) as sb, sb.client(398) as c:
            return [c.get("/v1/partner/providers").status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert {200, 502} == set(first)
