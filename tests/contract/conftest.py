"""Shared fixtures of the klikit client tests.

Edge cases run against respx mocks; the contract tests run the client over loopback HTTP
against the local sandbox (``devstack.sandbox.testing.running_sandbox``): one sandbox for the
session, reseeded before every test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from klikit_support import FAST, PARTNER_KEY, SECRET, SleepRecorder, credential

from klikit import KlikitClient, RetryPolicy


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def make_client(sleeps: SleepRecorder) -> Iterator[Callable[..., KlikitClient]]:
    """``make_client(base_url, partner_key=..., secret=..., retry=...)``: closed after the test; waits recorded."""
    made: list[KlikitClient] = []

    def make(
        base_url: str,
        partner_key: str = PARTNER_KEY,
        secret: str = SECRET,
        *,
        retry: RetryPolicy = FAST,
        record_sleeps: bool = True,
        **kw: Any,
    ) -> KlikitClient:
        kw.setdefault("timeout", httpx.Timeout(3.0, connect=1.0))
        client = KlikitClient(base_url, credential(partner_key, secret), retry=retry, **kw)
        if record_sleeps:
            client._sleep = sleeps
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Any]:
    """One local klikit sandbox (uvicorn in a thread, loopback HTTP) for the whole run."""
    testing = pytest.importorskip("devstack.sandbox.testing")
    with testing.running_sandbox() as handle:
        yield handle


@pytest.fixture
def sandbox(sandbox_server: Any) -> Any:
    """The sandbox, reseeded: fresh world, no faults, no scripts, empty call record and idempotency records."""
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def client(sandbox: Any, make_client: Callable[..., KlikitClient]) -> KlikitClient:
    """A client of business 398 on the sandbox, with fast in-call retries (waits recorded, not slept)."""
    return make_client(sandbox.url)
