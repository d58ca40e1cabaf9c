"""A probe actor for ``bench.recovery``: how long a dead worker's fetched messages take to come back.

``python -m dramatiq bench.recovery_probe --processes 1 --threads 1`` runs it. The broker is
built like menusync's (``workers.broker``: Redis with ``MENUSYNC_HEARTBEAT_TIMEOUT_MS`` and
``MENUSYNC_BROKER_MAINTENANCE_CHANCE``, or RabbitMQ when ``BROKER_URL`` is amqp), under the
namespace ``<prefix>-dramatiq`` of its own prefix. ``probe(tag)`` records when it started in
Redis (``<prefix>:probe:started``) and then sleeps ``PROBE_SLEEP_S`` (the victim sleeps for an
hour, so the messages it fetched stay with it until it is killed; the survivor does not sleep).
"""

from __future__ import annotations

import os
import time

import dramatiq

from config.redis import connect
from config.settings import get_settings
from workers.broker import build_broker

QUEUE = "menusync-probe"

_settings = get_settings()
broker = build_broker(_settings.model_copy(update={"worker_metrics": False}))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, broker=broker, max_retries=0)
def probe(tag: str) -> None:
    """Record the start of ``tag`` with this process's id, then sleep ``PROBE_SLEEP_S``."""
    client = connect(_settings.redis_url)
    client.hset(f"{_settings.prefix}:probe:started", tag, f"{time.time():.3f}:{os.getpid()}")
    client.close()
    time.sleep(float(os.environ.get("PROBE_SLEEP_S", "0")))
