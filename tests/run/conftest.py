"""Fixtures of the run tests: a sandbox subprocess and a stack of menusync processes on the test Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from run_support import Stack, env_for

from config.redis import connect, delete_prefix
from devstack.redis_cluster import running_cluster
from devstack.sandbox.testing import SandboxProcess


@pytest.fixture(scope="module")
def sandbox_proc() -> Iterator[SandboxProcess]:
    with SandboxProcess() as sandbox:
        yield sandbox


@pytest.fixture
def stack_prefix(run_prefix: str, redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own under the run's prefix (so the run's cleanup covers it too)."""
    prefix = f"{run_prefix}-run"
    client = connect(redis_url)
    delete_prefix(client, prefix)
    yield prefix
    delete_prefix(client, prefix)
    client.close()


@pytest.fixture
def stack(tmp_path: Path, redis_url: str, stack_prefix: str, sandbox_proc: SandboxProcess) -> Iterator[Stack]:
    sandbox_proc.reset()
    (tmp_path / "logs").mkdir()
    s = Stack(env_for(tmp_path, redis_url, stack_prefix, sandbox_proc), tmp_path / "logs")
    yield s
    s.stop()


@pytest.fixture
def stack_redis(redis_url: str) -> Iterator[Any]:
    client = connect(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real 3-primary Redis Cluster on loopback for the session (``cluster_support``)."""
    with running_cluster(tmp_path_factory.mktemp("cluster")) as url:
        yield url
