"""Redis connections and key naming.

Every key menusync writes starts with the configured prefix, so that several
deployments (or test runs) can share one Redis and each cleans up only its own.
"""

from __future__ import annotations

import redis

from config.settings import Settings


def connect(url: str) -> redis.Redis:
    """A client with decoded responses and a short connect timeout (hiredis parses when installed)."""
    return redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=2, health_check_interval=30)


class Keys:
    """Key names under one prefix. ``Keys("menusync").pending(398) == "menusync:pending:398"``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, *parts: object) -> str:
        return ":".join([self.prefix, *(str(p) for p in parts)])

    def __repr__(self) -> str:
        return f"Keys({self.prefix!r})"


def redis_for(settings: Settings) -> redis.Redis:
    return connect(settings.redis_url)


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete every key under ``prefix`` (tests and ``menusync`` resets). Returns the count."""
    deleted = 0
    batch: list[str] = []
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            deleted += int(client.delete(*batch))
            batch.clear()
    if batch:
        deleted += int(client.delete(*batch))
    return deleted
