"""Fixtures of the console tests: the app with console users and operator tokens, on a TestClient."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "producers"))

from console_support import OPERATOR_TOKENS, USERS
from producer_helpers import make_settings

from producers.app import create_app


@pytest.fixture
def client(r: redis.Redis) -> Iterator[TestClient]:
    settings = make_settings(console_users=USERS, operator_tokens=OPERATOR_TOKENS)
    with TestClient(create_app(settings)) as c:
        yield c
