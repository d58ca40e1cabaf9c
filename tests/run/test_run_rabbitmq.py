"""The pipeline once on RabbitMQ (``BROKER_URL=amqp://...``): skipped with the reason when none is reachable."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from run_support import STORES, Stack, availability, published_item

from devstack.stack import SCHEDULER_ARGV, WEB_ARGV, WORKER_ARGV, wait_for

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def _rabbitmq_reachable() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=0.5):
            pass
    except OSError as exc:
        return f"no RabbitMQ at 127.0.0.1:5672 ({exc.strerror or exc})"
    try:
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL + "?connection_attempts=1&socket_timeout=2"))
        connection.close()
    except Exception as exc:
        return f"RabbitMQ at 127.0.0.1:5672 refused guest/guest ({type(exc).__name__})"
    return None


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
