"""The pipeline once on RabbitMQ (``BROKER_URL=amqp://...``): skipped with the reason when none is reachable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from run_support import STORES, Stack, availability, published_item

from devstack.redis_cluster import AMQP_URL, rabbitmq_unreachable
from devstack.stack import SCHEDULER_ARGV, WEB_ARGV, WORKER_ARGV, wait_for
from workers.queues import queue_name


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


#: Run as a deployment's process: prints its flush queue, and sends one flush when asked.
_FLUSH_QUEUE = """
import sys
import workers.actors as a
if sys.argv[1:] == ["send"]:
    a.flush_business.send(4242)
print(a.flush_business.queue_name)
"""


def test_two_deployments_on_one_vhost_keep_their_messages_apart(run_prefix: str) -> None:
    """A flush sent by one deployment waits in its own queue: another deployment's workers on the
    same RabbitMQ vhost (another prefix) never receive it."""
    reason = _rabbitmq_reachable()
    if reason:
        pytest.skip(reason)
    import os
    import subprocess
    import sys

    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    prefixes = (f"{run_prefix}-a", f"{run_prefix}-b")

    def flush_queue(prefix: str, *args: str) -> str:
        env = {**os.environ, "BROKER_URL": AMQP_URL, "MENUSYNC_PREFIX": prefix}
        argv = [sys.executable, "-c", _FLUSH_QUEUE, *args]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=True)
        return done.stdout.strip().splitlines()[-1]

    queue, other = flush_queue(prefixes[0], "send"), flush_queue(prefixes[1])
    broker = RabbitmqBroker(url=AMQP_URL)
    try:
        for name in (queue, other):
            broker.declare_queue(name)
        assert queue == queue_name(prefixes[0], "flush")
        assert broker.get_queue_message_counts(queue)[0] == 1
        assert broker.get_queue_message_counts(other) == (0, 0, 0)
    finally:
        channel = broker.channel
        for name in (queue, other):
            for suffix in ("", ".DQ", ".XQ"):
                channel.queue_delete(name + suffix)
        broker.close()
