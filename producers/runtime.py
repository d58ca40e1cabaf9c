"""Process-wide Redis client (one connection pool per URL) for the producers."""

from __future__ import annotations

import threading

import redis

from config.redis import Keys, connect
from config.settings import Settings, get_settings

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}


def shared_client(url: str) -> redis.Redis:
    """One client (thread-safe connection pool) per Redis URL, reused by every request."""
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.get(url)
            if client is None:
                client = connect(url)
                _clients[url] = client
    return client


def context(settings: Settings | None = None) -> tuple[redis.Redis, Keys]:
    settings = settings or get_settings()
    return shared_client(settings.redis_url), Keys(settings.prefix)
