"""The naive pipeline the lunch rush compares against: one message, one write, one publish per change.

Run its workers with ``python -m dramatiq bench.naive --processes 1 --threads 8`` (same command
shape as menusync's workers). It reads the same environment as menusync (``REDIS_URL``,
``MENUSYNC_PREFIX``, ``KLIKIT_BASE_URL``, the credentials file, the klikit timeouts and in-call
retry settings), but its messages live under their own broker namespace (``<prefix>-naive``) and
queue (``naive``), so that it never meets menusync's messages.

Per change it sends ``enableItems`` for the one item at the one store, then ``publishMenu`` for
that store, through the same :class:`klikit.client.KlikitClient` (same in-call retries). A
transient failure raises, and Dramatiq's own retries (same backoff bounds as menusync's) try the
whole message again; a permanent one is logged and dropped. No ledger, no versions, no
coalescing, no debounce.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import dramatiq
import structlog
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from config.credentials import Credentials
from config.logging import configure_logging
from config.settings import Settings, get_settings
from klikit.client import KlikitClient
from klikit.errors import KlikitError
from workers.outcomes import Action, classify

QUEUE = "naive"

_settings: Settings = get_settings()
configure_logging(_settings.log_format, _settings.log_level)
log = structlog.get_logger("bench.naive")


def namespace(prefix: str) -> str:
    return f"{prefix}-naive"


def build_broker(settings: Settings) -> RedisBroker:
    return RedisBroker(
        url=settings.redis_url,
        namespace=namespace(settings.prefix),
        heartbeat_timeout=settings.heartbeat_timeout_ms,
        middleware=[
            AgeLimit(),
            TimeLimit(time_limit=120_000),
            ShutdownNotifications(),
            Callbacks(),
            Pipelines(),
            Retries(min_backoff=_settings.retry_min_backoff_ms, max_backoff=_settings.retry_max_backoff_ms),
            CurrentMessage(),
        ],
    )


broker = build_broker(_settings)
dramatiq.set_broker(broker)

_clients: dict[int, KlikitClient] = {}
_lock = threading.Lock()
_credentials: Credentials | None = None


def _client(business_id: int) -> tuple[KlikitClient, tuple[int, ...]]:
    global _credentials
    with _lock:
        if _credentials is None:
            _credentials = Credentials.load(_settings.credentials_file)
        credential = _credentials.get(business_id)
        client = _clients.get(business_id)
        if client is None:
            client = _clients[business_id] = KlikitClient.from_settings(_settings, credential)
        return client, credential.provider_ids


def _key(kind: str, change_id: str) -> str:
    return f"naive-{kind}-" + hashlib.sha256(change_id.encode()).hexdigest()[:40]


def _send(client: KlikitClient, operation: str, body: dict[str, Any], key: str) -> None:
    try:
        client.send(operation, body=body, idempotency_key=key)
    except KlikitError as error:
        if classify(error) in (Action.RETRY, Action.RATE_LIMITED):
            raise  # Dramatiq retries the whole message
        log.warning("naive: permanent failure dropped", operation=operation, code=error.code)


@dramatiq.actor(queue_name=QUEUE, max_retries=50, broker=broker)
def naive_change(business_id: int, brand_id: int, branch_id: int, item_id: int, enabled: bool, change_id: str) -> None:
    """One change: write it, then publish its store."""
    client, providers = _client(business_id)
    store = {"brandID": brand_id, "branchID": branch_id}
    _send(client, "enable_items", {"ids": [item_id], "isEnabled": enabled, "zoneStores": [store]}, _key("w", change_id))
    _send(
        client,
        "publish_menu",
        {"stores": [store], "providerIDs": sorted(set(providers))},
        _key("p", change_id),
    )


def unfinished(redis_client: Any, prefix: str) -> int:
    """Messages of the naive queue not yet acknowledged (ready, delayed or in flight)."""
    ns = namespace(prefix)
    pipe = redis_client.pipeline(transaction=False)
    pipe.hlen(f"{ns}:{QUEUE}.msgs")
    pipe.hlen(f"{ns}:{QUEUE}.DQ.msgs")
    return int(sum(pipe.execute()))
