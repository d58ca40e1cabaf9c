"""Fixtures of the hostile-input tests: the receiver app on a TestClient, on the run's Redis prefix."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from hostile_support import hostile_settings

from producers.app import create_app
from workers.runtime import reset_runtime


@pytest.fixture
def app(r: redis.Redis) -> Any:
    reset_runtime()  # the ledger and nudges of submit_changes use the process runtime: this run's prefix
    return create_app(hostile_settings())


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    # Server exceptions become 500 answers (which the tests then refuse) instead of raising in the test.
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
