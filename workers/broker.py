"""The Dramatiq broker: Redis by default, RabbitMQ when ``BROKER_URL`` is an amqp URL.

The ledger, leases and debounce state stay in Redis either way; only messages move.
Middleware is listed explicitly so that the pipeline's hooks are visible in one place.
"""

from __future__ import annotations

import dramatiq
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
from dramatiq.middleware.prometheus import Prometheus

from config.logging import configure_logging
from config.redis import connect, is_sentinel_url
from config.settings import Settings, get_settings
from workers.deadletters import DeadLetterStore
from workers.key_migration import refuse_legacy_layout
from workers.metrics import DEAD_LETTERS
from workers.middleware import DeadLetters, LayoutCheck, LogContext, QueueWaitNote, ShutdownSignal
from workers.queue_wait import FLUSH_LANES, QueueWait
from workers.queues import queue_name
from workers.runtime import runtime
from workers.shutdown import WORKER_STOPPING


def _dead_letter_store() -> DeadLetterStore:
    """The process's dead-letter store, resolved when a message fails (the runtime is built lazily)."""
    return runtime().dead_letters


def _queue_wait() -> QueueWait:
    rt = runtime()
    return QueueWait(rt.redis, rt.keys)


def _check_layout() -> None:
    rt = runtime()
    refuse_legacy_layout(rt.redis, rt.keys)


def _configure_logging() -> None:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)


def build_broker(settings: Settings) -> dramatiq.Broker:
    """A broker for ``settings`` with menusync's middleware stack (dead letters included)."""
    # Dramatiq runs "after" hooks in reverse order: DeadLetters sits before Retries so that it
    # sees a message only once Retries has decided it failed for good; LogContext comes first
    # so that its context stays bound until every other hook has logged.
    middleware: list[dramatiq.Middleware] = [
        LogContext(configure=_configure_logging),
        LayoutCheck(_check_layout),
        DeadLetters(store=_dead_letter_store, counter=DEAD_LETTERS),
        AgeLimit(),
        TimeLimit(time_limit=120_000),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(min_backoff=settings.retry_min_backoff_ms, max_backoff=settings.retry_max_backoff_ms),
        CurrentMessage(),
        ShutdownSignal(WORKER_STOPPING),
        QueueWaitNote({queue_name(settings.prefix, lane): lane for lane in FLUSH_LANES}, _queue_wait),
    ]
    if settings.worker_metrics:
        middleware.append(Prometheus())
    url = settings.effective_broker_url
    broker: dramatiq.Broker
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url, middleware=middleware)
    elif is_sentinel_url(url):
        # Dramatiq decodes message bodies itself: its client must answer bytes.
        broker = RedisBroker(
            client=connect(url, decode_responses=False),
            namespace=f"{settings.prefix}-dramatiq",
            heartbeat_timeout=settings.heartbeat_timeout_ms,
            maintenance_chance=settings.broker_maintenance_chance,
            middleware=middleware,
        )
    else:
        broker = RedisBroker(
            url=url,
            namespace=f"{settings.prefix}-dramatiq",
            heartbeat_timeout=settings.heartbeat_timeout_ms,
            maintenance_chance=settings.broker_maintenance_chance,
            middleware=middleware,
        )
    return broker
