"""Dramatiq's own floor: a no-op actor on the same Redis, for the throughput ratio.

``python -m dramatiq bench.noop --processes 1 --threads 8`` runs it with the same command shape
as menusync's workers; messages live under ``<prefix>-noop``. The middleware stack is Dramatiq's
default one, so the figure is what Dramatiq itself costs per message on this machine.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from config.settings import get_settings

QUEUE = "noop"

_settings = get_settings()
broker = RedisBroker(
    url=_settings.redis_url, namespace=f"{_settings.prefix}-noop", heartbeat_timeout=_settings.heartbeat_timeout_ms
)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, broker=broker)
def noop(n: int) -> None:
    """Nothing at all."""


def unfinished(redis_client: Any, prefix: str) -> int:
    ns = f"{prefix}-noop"
    pipe = redis_client.pipeline(transaction=False)
    pipe.hlen(f"{ns}:{QUEUE}.msgs")
    pipe.hlen(f"{ns}:{QUEUE}.DQ.msgs")
    return int(sum(pipe.execute()))
