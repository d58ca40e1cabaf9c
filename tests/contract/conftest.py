"""Shared fixtures of the klikit client tests.

Edge cases run against respx mocks; the contract tests run the client over loopback HTTP
against the local sandbox (``klikit.sandbox.testing.running_sandbox``), one sandbox per
module, reset before every test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

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
        client = KlikitClient(base_url, credential(partner_key, secret), retry=retry, **kw)
        if record_sleeps:
            client._sleep = sleeps
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
