"""Fixtures of the producer tests: settings with secrets, the app on a TestClient, mappings."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest
import redis
import structlog
from fastapi.testclient import TestClient
from producer_helpers import MAPPING_CSV, make_settings

from config.logging import configure_logging
from config.redis import Keys
from config.settings import Settings
from producers.app import create_app
from producers.mapping import Mappings, parse_csv
from workers.ledger import Ledger


@pytest.fixture
def settings(r: redis.Redis) -> Settings:
    return make_settings()


@pytest.fixture
def ledger(r: redis.Redis, keys: Keys) -> Ledger:
    return Ledger(r, keys)


@pytest.fixture
def mappings(r: redis.Redis, keys: Keys) -> Mappings:
    m = Mappings(r, keys)
    m.import_rows(parse_csv(MAPPING_CSV))
    return m


@pytest.fixture
def client(settings: Settings, mappings: Mappings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time (pytest swaps it between setup and call)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """Log JSON lines to the captured stderr for one test, then put the logging setup back."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("json", "DEBUG")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(_CurrentStderr()))  # type: ignore[arg-type]
    try:
        yield capsys
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)
