"""Fixtures of the pipeline's end-to-end tests: the sandbox and a running pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pipeline_support import Pipeline

from devstack.sandbox.testing import SandboxHandle, running_sandbox


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
