"""The pipeline once on RabbitMQ (``BROKER_URL=amqp://...``): skipped with the reason when none is reachable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from run_support import STORES, Stack, availability, published_item

from devstack.redis_cluster import AMQP_URL, rabbitmq_unreachable
from devstack.stack import SCHEDULER_ARGV, WEB_ARGV, WORKER_ARGV, wait_for


def _rabbitmq_reachable() -> str | None:
    return rabbitmq_unreachable(AMQP_URL)


pytestmark = pytest.mark.rabbitmq


def test_a_change_travels_over_rabbitmq(stack: Stack, sandbox_proc: Any) -> None:
    reason = _rabbitmq_reachable()
    if reason:
        pytest.skip(reason)
    stack.env["BROKER_URL"] = AMQP_URL
    stack.start_web(WEB_ARGV)
    stack.start("worker", WORKER_ARGV)
    # The sweeper re-nudges if a message on the shared broker is taken by another deployment's worker.
    stack.start("scheduler", SCHEDULER_ARGV)
    at = datetime.now(UTC) - timedelta(seconds=5)
    assert stack.post_changes([availability("rmq-1", [120], False, at, STORES[1])]).status_code == 202
    try:
        wait_for(
            lambda: (published_item(sandbox_proc, STORES[1], 120) or {}).get("enabled") is False,
            timeout=40,
            what="item 120 published over RabbitMQ",
        )
    except AssertionError:
        print(stack.log_tail())
        raise
