"""Fixtures of the pipeline's end-to-end tests: the sandbox and a running pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pipeline_support import BUSINESS, Pipeline

from devstack.sandbox.testing import SandboxHandle, running_sandbox
from devstack.stack import ServiceProcess, stack_env, write_credentials


@pytest.fixture(scope="session")
def sandbox_session() -> Iterator[SandboxHandle]:
    with running_sandbox() as handle:
        yield handle


@pytest.fixture
def sandbox(sandbox_session: SandboxHandle) -> SandboxHandle:
    sandbox_session.reset()
    return sandbox_session


@pytest.fixture
def broker() -> Any:
    import workers.actors

    b = workers.actors.broker
    b.flush_all()
    return b


@pytest.fixture
def make_pipeline(r: Any, sandbox: SandboxHandle, broker: Any) -> Iterator[Any]:
    made: list[Pipeline] = []

    def make(start: bool = True, **overrides: Any) -> Pipeline:
        p = Pipeline(sandbox, broker, **overrides)
        made.append(p)
        return p.start() if start else p

    yield make
    for p in made:
        p.stop()
    broker.flush_all()


@pytest.fixture
def pipeline(make_pipeline: Any) -> Pipeline:
    return make_pipeline()


@pytest.fixture
def worker_env(tmp_path: Path, redis_url: str, run_prefix: str, sandbox: Any, r: Any) -> dict[str, str]:
    """The environment of ``dramatiq workers.actors`` subprocesses: the run's Redis and prefix, the sandbox."""
    creds = write_credentials(
        tmp_path / "credentials.toml",
        {BUSINESS: sandbox.credentials(BUSINESS)},
        provider_ids=[1, 6],
    )
    return stack_env(redis_url=redis_url, prefix=run_prefix, klikit_url=sandbox.url, credentials_file=creds)


@pytest.fixture
def workers() -> Iterator[list[ServiceProcess]]:
    """Worker subprocesses started by the test; terminated (SIGTERM, then SIGKILL) afterwards."""
    started: list[ServiceProcess] = []
    yield started
    for proc in started:
        proc.terminate(timeout=15)
