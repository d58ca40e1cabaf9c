"""One sandbox (uvicorn in a background thread) for the whole sandbox suite, reset before each test."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import httpx
import pytest

from devstack.sandbox.testing import SandboxHandle, running_sandbox

_keys = itertools.count(1)


@pytest.fixture(scope="session")
def sandbox_session() -> Iterator[SandboxHandle]:
    with running_sandbox(businesses=2, stores_per_business=2, items_per_business=20) as handle:
        yield handle


@pytest.fixture
def sandbox(sandbox_session: SandboxHandle) -> SandboxHandle:
    sandbox_session.reset()
    return sandbox_session


@pytest.fixture
def client(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with sandbox.client(398) as c:
        yield c


@pytest.fixture
def key() -> Callable[[], str]:
    """A factory of fresh idempotency keys."""
    return lambda: f"test-key-{next(_keys)}"
