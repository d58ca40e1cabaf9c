"""Redis connections and key naming.

Every key menusync writes starts with the configured prefix, so that several
deployments (or test runs) can share one Redis and each cleans up only its own.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import SplitResult, unquote, urlsplit

import redis
import redis.asyncio
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

from config.settings import Settings, SettingsError, mask_url

SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"


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


@dataclass(frozen=True)
class ClusterUrl:
    """``redis+cluster://[:password@]host:port[,host:port]``, parsed: a Redis Cluster's seed nodes."""

    nodes: tuple[tuple[str, int], ...]
    password: str | None = field(default=None, repr=False)


def is_sentinel_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() == SENTINEL_SCHEME


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() == CLUSTER_SCHEME


def _hosts(entries: str, what: str, bad: Callable[[str], RedisUrlError]) -> tuple[tuple[str, int], ...]:
    hosts: list[tuple[str, int]] = []
    for entry in entries.split(","):
        host, colon, port = entry.strip().rpartition(":")
        if not colon or not host:
            raise bad(f"{what} address {entry.strip()!r} must read host:port")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise bad(f"{what} address {entry.strip()!r} has no valid port")
        hosts.append((host.strip("[]"), int(port)))
    return tuple(hosts)


def _password(userinfo: str, at: str, bad: Callable[[str], RedisUrlError]) -> str | None:
    if not at:
        return None
    _, colon, secret = userinfo.partition(":")
    if not colon or not secret:
        raise bad("the credentials must read :password@")
    return unquote(secret)


def _split_url(url: str, scheme: str) -> tuple[Callable[[str], RedisUrlError], SplitResult]:
    """The URL's parts after ``scheme://``, and the error maker naming the URL (its password masked)."""
    shown = mask_url(url)

    def bad(problem: str) -> RedisUrlError:
        return RedisUrlError(f"invalid Redis URL {shown}: {problem}")

    given, sep, rest = url.partition("://")
    if not sep or given.lower() != scheme:
        raise bad(f"the scheme must be {scheme}://")
    parts = urlsplit(f"x://{rest}")
    if parts.query or parts.fragment:
        raise bad("query strings and fragments are not supported")
    return bad, parts


def parse_cluster_url(url: str) -> ClusterUrl:
    """Parse a ``redis+cluster://`` URL; :class:`RedisUrlError` names what is wrong."""
    bad, parts = _split_url(url, CLUSTER_SCHEME)
    if parts.path.strip("/") not in ("", "0"):
        raise bad("a Redis Cluster has only database 0")
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    return ClusterUrl(nodes=_hosts(hostinfo, "cluster node", bad), password=_password(userinfo, at, bad))


def parse_sentinel_url(url: str) -> SentinelUrl:
    """Parse a ``redis+sentinel://`` URL; :class:`RedisUrlError` names what is wrong."""
    bad, parts = _split_url(url, SENTINEL_SCHEME)
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    password = _password(userinfo, at, bad)
    sentinels = _hosts(hostinfo, "sentinel", bad)
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
    return SentinelUrl(sentinels=sentinels, service=unquote(path[0]), db=db, password=password)


def _cluster_options(url: str, node: Callable[[str, int], Any], decode_responses: bool) -> dict[str, Any]:
    """The arguments of a cluster client (sync or asyncio: ``node`` is that library's ClusterNode)."""
    seeds = parse_cluster_url(url)
    return {
        "startup_nodes": [node(host, port) for host, port in seeds.nodes],
        "password": seeds.password,
        "decode_responses": decode_responses,
        "socket_connect_timeout": 2,
    }


def connect(url: str, *, decode_responses: bool = True) -> redis.Redis:
    """A client with a short connect timeout (hiredis parses when installed); decoded replies by default.

    A ``redis+cluster://`` URL gives a :class:`redis.cluster.RedisCluster` (typed as a client: the
    commands menusync uses are the same; every script and transaction stays in one slot, see
    :class:`Keys`). A ``redis+sentinel://`` URL gives a client on the master the sentinels name: after a failover
    its connections find the new master on their next connection error, and a write refused by
    a demoted master (``READONLY``) comes back as a ``ConnectionError`` after disconnecting.
    """
    options: dict = {
        "decode_responses": decode_responses,
        "socket_connect_timeout": 2,
        "health_check_interval": 30,
    }
    if is_cluster_url(url):
        cluster: Any = RedisCluster(**_cluster_options(url, ClusterNode, decode_responses))
        return cast(redis.Redis, cluster)
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **options)
    target = parse_sentinel_url(url)
    sentinel = Sentinel(list(target.sentinels), socket_connect_timeout=2, socket_timeout=2)
    client: redis.Redis = sentinel.master_for(
        target.service, redis_class=redis.Redis, db=target.db, password=target.password, **options
    )
    return client


#: How many hash-tag shards the per-business state is spread over (see :class:`Keys`). A constant:
#: changing it moves every business's keys (``menusync migrate-keys`` re-homes them).
STATE_SHARDS = 64


def shard_of(business_id: int) -> int:
    """The state shard of a business: a stable hash, so ids that share a pattern still spread."""
    return zlib.crc32(str(business_id).encode()) % STATE_SHARDS


class Keys:
    """Key names under one prefix, laid out so that every Lua script touches one Redis Cluster slot.

    - Per-business state carries its business's **shard** as a hash tag, last the business id:
      ``Keys("menusync").business(398, "pending") == "menusync:{S}:pending:398"`` with
      ``S = shard_of(398)``. A business never spans shards, and the indexes a shard's scripts
      update with that state live in the same slot: ``Keys.shard(S, "attention", "pending")``, the
      shard's version counter ``seq`` and its ``businesses`` set. That is why the tag is the shard,
      not the business: the record script files a business in the sweeper's index in the same
      atomic step as its state.
    - Keys one script or transaction touches together but that belong to no business share a
      **group** tag: ``Keys.group("dlq", "index") == "menusync:{dlq}:index"`` (dead letters,
      timers, mappings).
    - Everything else is a plain single key: ``Keys("menusync")("dedupe", "pos", "e1")``.

    Keys that several modules share have a method here, so that each name is spelled once.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, *parts: object) -> str:
        return ":".join([self.prefix, *(str(p) for p in parts)])

    def business(self, business_id: int, *parts: object) -> str:
        """A per-business state key: ``<prefix>:{shard}:<parts>:<business_id>``."""
        return self(f"{{{shard_of(business_id)}}}", *parts, business_id)

    def shard(self, shard: int, *parts: object) -> str:
        """A key of one state shard (``0 <= shard < STATE_SHARDS``): ``<prefix>:{shard}:<parts>``."""
        return self(f"{{{shard}}}", *parts)

    def group(self, tag: str, *parts: object) -> str:
        """A key of a group touched together: ``<prefix>:{tag}:<parts>``."""
        return self(f"{{{tag}}}", *parts)

    @staticmethod
    def shard_of(business_id: int) -> int:
        return shard_of(business_id)

    @staticmethod
    def shards() -> range:
        return range(STATE_SHARDS)

    def seq(self, business_id: int) -> str:
        """The version counter of the business's shard (versions order per target, hence per shard)."""
        return self.shard(shard_of(business_id), "seq")

    def businesses(self, shard: int) -> str:
        """The set of business ids of one shard that ever recorded a change."""
        return self.shard(shard, "businesses")

    def businesses_of(self, business_id: int) -> str:
        return self.businesses(shard_of(business_id))

    def flush_scheduled(self, business_id: int) -> str:
        """Set while one flush message of the business is pending (its value: when it is due)."""
        return self.business(business_id, "flush", "scheduled")

    def flush_dirty(self, business_id: int) -> str:
        """Set by a nudge: the running flush looks again before it lets go of its lease."""
        return self.business(business_id, "flush", "dirty")

    def flush_renudged(self, business_id: int) -> str:
        """Set by the sweeper's forced nudge: no other one for the business while it lives."""
        return self.business(business_id, "flush", "renudged")

    def publish_state(self, business_id: int) -> str:
        return self.business(business_id, "publish")

    def publish_stores(self, business_id: int) -> str:
        return self.business(business_id, "publish", "stores")

    def publish_generation(self, business_id: int) -> str:
        return self.business(business_id, "publish", "generation")

    def publish_last(self, business_id: int) -> str:
        return self.business(business_id, "publish", "last")

    def reconcile_last(self, business_id: int) -> str:
        return self.business(business_id, "reconcile", "last")

    def credentials_generation(self) -> str:
        return self("credentials", "generation")

    def attention(self, kind: str, shard: int) -> str:
        """A shard's sweeper index of businesses by when ``kind`` (pending, suspect, publish) is next due."""
        return self.shard(shard, "attention", kind)

    def attention_of(self, business_id: int, kind: str) -> str:
        return self.attention(kind, shard_of(business_id))

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
    """:func:`connect`'s asyncio twin (same options, Sentinel and Cluster URLs too) for the receiver's event loop.

    Its connections belong to the event loop that opens them: build one client per loop."""
    from redis.asyncio.sentinel import Sentinel as AsyncSentinel

    options: dict = {
        "decode_responses": decode_responses,
        "socket_connect_timeout": 2,
        "health_check_interval": 30,
    }
    if is_cluster_url(url):
        from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
        from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

        cluster: Any = AsyncRedisCluster(**_cluster_options(url, AsyncClusterNode, decode_responses))
        return cast(redis.asyncio.Redis, cluster)
    if not is_sentinel_url(url):
        return redis.asyncio.Redis.from_url(url, **options)
    target = parse_sentinel_url(url)
    sentinel = AsyncSentinel(list(target.sentinels), socket_connect_timeout=2, socket_timeout=2)
    client: redis.asyncio.Redis = sentinel.master_for(
        target.service, redis_class=redis.asyncio.Redis, db=target.db, password=target.password, **options
    )
    return client
