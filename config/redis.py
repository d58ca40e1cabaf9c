"""Redis connections and key naming.

Every key menusync writes starts with the configured prefix, so that several
deployments (or test runs) can share one Redis and each cleans up only its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio
from redis.sentinel import Sentinel

from config.settings import Settings, SettingsError, mask_url

SENTINEL_SCHEME = "redis+sentinel"


class RedisUrlError(SettingsError):
    """``REDIS_URL`` cannot be used (the message names the problem, never the password)."""


@dataclass(frozen=True)
class SentinelUrl:
    """``redis+sentinel://[:password@]host:port[,host:port]/service_name[/db]``, parsed.

    The password authenticates to the Redis master and replicas (the sentinels are asked
    without one).
    """

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    password: str | None = field(default=None, repr=False)


def is_sentinel_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() == SENTINEL_SCHEME


def parse_sentinel_url(url: str) -> SentinelUrl:
    """Parse a ``redis+sentinel://`` URL; :class:`RedisUrlError` names what is wrong."""
    shown = mask_url(url)

    def bad(problem: str) -> RedisUrlError:
        return RedisUrlError(f"invalid Redis URL {shown}: {problem}")

    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != SENTINEL_SCHEME:
        raise bad(f"the scheme must be {SENTINEL_SCHEME}://")
    parts = urlsplit(f"x://{rest}")
    if parts.query or parts.fragment:
        raise bad("query strings and fragments are not supported")
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    password: str | None = None
    if at:
        _, colon, secret = userinfo.partition(":")
        if not colon or not secret:
            raise bad("the credentials must read :password@")
        password = unquote(secret)
    sentinels: list[tuple[str, int]] = []
    for entry in hostinfo.split(","):
        host, colon, port = entry.strip().rpartition(":")
        if not colon or not host:
            raise bad(f"sentinel address {entry.strip()!r} must read host:port")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise bad(f"sentinel address {entry.strip()!r} has no valid port")
        sentinels.append((host.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise bad("the service name is missing (.../service_name[/db])")
    if len(path) > 2:
        raise bad("the path must be /service_name[/db]")
    db = 0
    if len(path) == 2:
        if not path[1].isdigit():
            raise bad(f"the database {path[1]!r} is not a number")
        db = int(path[1])
    return SentinelUrl(sentinels=tuple(sentinels), service=unquote(path[0]), db=db, password=password)


def connect(url: str, *, decode_responses: bool = True) -> redis.Redis:
    """A client with a short connect timeout (hiredis parses when installed); decoded replies by default.

    A ``redis+sentinel://`` URL gives a client on the master the sentinels name: after a failover
    its connections find the new master on their next connection error, and a write refused by
    a demoted master (``READONLY``) comes back as a ``ConnectionError`` after disconnecting.
    """
    options: dict = {
        "decode_responses": decode_responses,
        "socket_connect_timeout": 2,
        "health_check_interval": 30,
    }
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **options)
    target = parse_sentinel_url(url)
    sentinel = Sentinel(list(target.sentinels), socket_connect_timeout=2, socket_timeout=2)
    client: redis.Redis = sentinel.master_for(
        target.service, redis_class=redis.Redis, db=target.db, password=target.password, **options
    )
    return client


class Keys:
    """Key names under one prefix: ``Keys("menusync")("pending", 398) == "menusync:pending:398"``.

    Keys that several modules share have a method here, so that each name is spelled once
    (``Keys("menusync").flush_scheduled(398) == "menusync:flush:scheduled:398"``).
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, *parts: object) -> str:
        return ":".join([self.prefix, *(str(p) for p in parts)])

    def flush_scheduled(self, business_id: int) -> str:
        """Set while one flush message of the business is pending (its value: when it is due)."""
        return self("flush", "scheduled", business_id)

    def flush_dirty(self, business_id: int) -> str:
        """Set by a nudge: the running flush looks again before it lets go of its lease."""
        return self("flush", "dirty", business_id)

    def publish_state(self, business_id: int) -> str:
        return self("publish", business_id)

    def publish_stores(self, business_id: int) -> str:
        return self("publish", "stores", business_id)

    def publish_generation(self, business_id: int) -> str:
        return self("publish", "generation", business_id)

    def publish_last(self, business_id: int) -> str:
        return self("publish", "last", business_id)

    def reconcile_last(self, business_id: int) -> str:
        return self("reconcile", "last", business_id)

    def credentials_generation(self) -> str:
        return self("credentials", "generation")

    def attention(self, kind: str) -> str:
        """The sweeper's index of businesses by when ``kind`` (pending, suspect, publish) is next due."""
        return self("attention", kind)

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


def connect_async(url: str, *, decode_responses: bool = True) -> redis.asyncio.Redis:
    """:func:`connect`'s asyncio twin (same options, Sentinel URLs too) for the receiver's event loop.

    Its connections belong to the event loop that opens them: build one client per loop."""
    from redis.asyncio.sentinel import Sentinel as AsyncSentinel

    options: dict = {
        "decode_responses": decode_responses,
        "socket_connect_timeout": 2,
        "health_check_interval": 30,
    }
    if not is_sentinel_url(url):
        return redis.asyncio.Redis.from_url(url, **options)
    target = parse_sentinel_url(url)
    sentinel = AsyncSentinel(list(target.sentinels), socket_connect_timeout=2, socket_timeout=2)
    client: redis.asyncio.Redis = sentinel.master_for(
        target.service, redis_class=redis.asyncio.Redis, db=target.db, password=target.password, **options
    )
    return client
