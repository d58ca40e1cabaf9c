"""The transient path over real HTTP: injected 502s, hangs, dropped connections and rate limits.

The client retries in-call with the same key and body and either succeeds or gives up with the
transient error after ``RetryPolicy.attempts``; the call record proves that a write took effect at
most once however many attempts reached klikit. Assertions are on attempt counts, never timings.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from klikit_support import BUSINESS, SleepRecorder, credential

from config.settings import Settings
from klikit import (
    DownstreamUnavailable,
    EnableUpdateRequest,
    KlikitClient,
    KlikitConnectionError,
    KlikitTimeout,
    RateLimited,
    RetryPolicy,
    TransientError,
)

BODY = EnableUpdateRequest(ids=[101], is_enabled=False)
MakeClient = Callable[..., KlikitClient]


def clear_faults_at(sandbox: Any, sleeps: SleepRecorder, wait_number: int) -> None:
    """Heal the sandbox at the ``wait_number``-th wait between attempts."""

    def heal(n: int) -> None:
        if n == wait_number:
            sandbox.clear_faults()

    sleeps.on_sleep = heal


def settled_calls(sandbox: Any, count: int, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """The call record once ``count`` calls are in it (hung calls finish after the client gave up)."""
    deadline = time.monotonic() + timeout_s
    calls: list[dict[str, Any]] = sandbox.calls()
    while len(calls) < count and time.monotonic() < deadline:
        time.sleep(0.05)
        calls = sandbox.calls()
    return calls


def enabled(sandbox: Any) -> bool:
    value: bool = sandbox.state(BUSINESS)["business"]["item"]["101"]["enabled"]
    return value


@pytest.mark.parametrize("heal_after", [1, 2])
def test_injected_502s_are_retried_until_klikit_recovers(
    client: KlikitClient, sandbox: Any, sleeps: SleepRecorder, heal_after: int
) -> None:
    sandbox.set_faults(downstream_rate=1.0)
    clear_faults_at(sandbox, sleeps, heal_after)
    resp = client.enable("item", BODY, idempotency_key="k-502")
    assert resp.attempts == heal_after + 1
    assert len(sleeps.waits) == heal_after
    calls = sandbox.calls()
    assert [c["status"] for c in calls] == [502] * heal_after + [200]
    assert {c["idempotency_key"] for c in calls} == {"k-502"}
    assert len({repr(c["body"]) for c in calls}) == 1
    assert [c["applied"] for c in calls].count(True) == 1
    assert enabled(sandbox) is False


def test_injected_502s_give_up_after_the_configured_attempts(make_client: MakeClient, sandbox: Any) -> None:
    sandbox.set_faults(downstream_rate=1.0)
    client = make_client(sandbox.url, retry=RetryPolicy(attempts=4, min_backoff_s=0.001, max_backoff_s=0.002))
    with pytest.raises(DownstreamUnavailable) as info:
        client.enable("item", BODY, idempotency_key="k-502")
    assert info.value.attempts == 4
    assert len(sandbox.calls()) == 4
    assert enabled(sandbox) is True


def test_random_502s_never_apply_a_write_twice(make_client: MakeClient, sandbox: Any) -> None:
    sandbox.set_faults(downstream_rate=0.4, seed=20261122)
    client = make_client(sandbox.url, retry=RetryPolicy(attempts=4, min_backoff_s=0.001, max_backoff_s=0.002))
    outcomes: dict[str, tuple[bool, int]] = {}
    for n in range(40):
        key = f"k-rand-{n}"
        request = EnableUpdateRequest(ids=[101 + n], is_enabled=False)
        try:
            outcomes[key] = (True, client.enable("item", request, idempotency_key=key).attempts)
        except DownstreamUnavailable as exc:
            outcomes[key] = (False, exc.attempts)
    per_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in sandbox.calls():
        per_key[call["idempotency_key"]].append(call)
    assert set(per_key) == set(outcomes)
    for key, (ok, attempts) in outcomes.items():
        calls = per_key[key]
        assert len(calls) == attempts
        assert [c["applied"] for c in calls].count(True) == (1 if ok else 0)
        assert ok or attempts == 4
    assert any(attempts > 1 for _, attempts in outcomes.values())  # the faults did bite


def test_a_hung_call_times_out_and_its_retry_applies_once(
    make_client: MakeClient, sandbox: Any, sleeps: SleepRecorder
) -> None:
    client = make_client(sandbox.url, timeout=httpx.Timeout(0.3, connect=1.0))
    sandbox.set_faults(hang_rate=1.0, hang_s=0.8)
    clear_faults_at(sandbox, sleeps, 1)
    resp = client.enable("item", BODY, idempotency_key="k-hang")
    assert resp.attempts == 2
    calls = settled_calls(sandbox, 2)
    assert len(calls) == 2
    assert {c["idempotency_key"] for c in calls} == {"k-hang"}
    assert Counter((c["applied"], c["replayed"]) for c in calls) == Counter({(True, False): 1, (False, True): 1})
    assert enabled(sandbox) is False


def test_calls_that_always_hang_give_up_with_a_timeout_and_apply_at_most_once(
    make_client: MakeClient, sandbox: Any
) -> None:
    client = make_client(sandbox.url, timeout=httpx.Timeout(0.2, connect=1.0))
    sandbox.set_faults(hang_rate=1.0, hang_s=0.6)
    with pytest.raises(KlikitTimeout) as info:
        client.enable("item", BODY, idempotency_key="k-hang")
    assert (info.value.code, info.value.status, info.value.attempts) == ("timeout", None, 3)
    calls = settled_calls(sandbox, 3)
    assert len(calls) == 3
    assert [c["applied"] for c in calls].count(True) == 1  # klikit applied it anyway, exactly once


def test_dropped_connections_before_the_write(make_client: MakeClient, sandbox: Any) -> None:
    sandbox.set_faults(drop_rate=1.0, drop_phase="before")
    client = make_client(sandbox.url)
    with pytest.raises(KlikitConnectionError) as info:
        client.enable("item", BODY, idempotency_key="k-drop")
    assert (info.value.code, info.value.status, info.value.attempts) == ("connection_error", None, 3)
    calls = settled_calls(sandbox, 3)
    assert [c["applied"] for c in calls] == [False, False, False]
    assert enabled(sandbox) is True


def test_a_connection_dropped_after_the_write_is_replayed_on_retry(
    client: KlikitClient, sandbox: Any, sleeps: SleepRecorder
) -> None:
    sandbox.set_faults(drop_rate=1.0, drop_phase="after")
    clear_faults_at(sandbox, sleeps, 1)
    resp = client.enable("item", BODY, idempotency_key="k-drop-after")
    assert resp.attempts == 2
    assert resp.data == {"updated": 1, "stores": 0}
    calls = settled_calls(sandbox, 2)
    assert [(c["applied"], c["replayed"]) for c in calls] == [(True, False), (False, True)]


def test_connection_refused_is_transient(make_client: MakeClient) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(f"http://127.0.0.1:{port}")
    with pytest.raises(KlikitConnectionError) as info:
        client.list_brands()
    assert info.value.attempts == 3


def test_rate_limited_call_waits_retry_after_and_succeeds(
    make_client: MakeClient, sandbox: Any, sleeps: SleepRecorder
) -> None:
    sandbox.set_faults(rate_per_minute=60, rate_burst=1)  # one token a second
    sleeps.real = True
    client = make_client(sandbox.url)
    client.list_brands()
    resp = client.list_brands()
    assert resp.attempts == 2
    assert sleeps.waits == [1.0]
    assert [c["status"] for c in sandbox.calls()] == [200, 429, 200]


def test_rate_limited_with_a_long_retry_after_is_left_to_the_caller(
    client: KlikitClient, sandbox: Any, sleeps: SleepRecorder
) -> None:
    sandbox.set_faults(rate_per_minute=6, rate_burst=1)  # a token every 10 s > max_retry_after_s
    client.enable("item", BODY, idempotency_key="k-1")
    with pytest.raises(RateLimited) as info:
        client.enable("item", EnableUpdateRequest(ids=[102], is_enabled=False), idempotency_key="k-2")
    assert info.value.attempts == 1
    assert info.value.retry_after is not None
    assert info.value.retry_after > client.retry_policy.max_retry_after_s
    assert sleeps.waits == []
    assert isinstance(info.value, RateLimited)
    assert not isinstance(info.value, TransientError)


def test_from_settings(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KLIKIT_BASE_URL", raising=False)
    monkeypatch.delenv("MENUSYNC_KLIKIT_BASE_URL", raising=False)
    settings = Settings(
        sandbox_url=sandbox.url,
        klikit_connect_timeout_s=0.5,
        klikit_read_timeout_s=0.25,
        klikit_incall_attempts=2,
        klikit_incall_min_backoff_s=0.001,
        klikit_incall_max_backoff_s=0.002,
    )
    with KlikitClient.from_settings(settings, credential()) as client:
        assert client.base_url == sandbox.url
        assert client.retry_policy == RetryPolicy(attempts=2, min_backoff_s=0.001, max_backoff_s=0.002)
        assert client.list_stores()
        sandbox.set_faults(hang_rate=1.0, hang_s=0.5)
        with pytest.raises(KlikitTimeout) as info:
            client.get_menu()
        assert info.value.attempts == 2
    settled_calls(sandbox, 4)
