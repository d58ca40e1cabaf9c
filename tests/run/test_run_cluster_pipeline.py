"""The whole stack (web, workers, scheduler as processes) with its state on a real 3-primary Redis
Cluster and its messages on RabbitMQ: a burst with out-of-order changes ends with every target
applied at its newest value (latest wins, nothing lost), nothing pending, every store published."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from run_support import STORES, Stack, availability, env_for, published_item

from config.redis import Keys, connect, delete_prefix
from devstack.redis_cluster import AMQP_URL, rabbitmq_unreachable
from devstack.stack import SCHEDULER_ARGV, WEB_ARGV, WORKER_ARGV, wait_for
from workers.ledger import Ledger

pytestmark = pytest.mark.rabbitmq
ITEMS = list(range(120, 140))


def test_a_burst_on_a_cluster_ends_applied_at_the_newest_values(
    tmp_path: Path, cluster_url: str, sandbox_proc: Any
) -> None:
    reason = rabbitmq_unreachable()
    if reason:
        pytest.skip(reason)
    sandbox_proc.reset()
    prefix = f"mstest-cl-{uuid.uuid4().hex[:6]}"
    (tmp_path / "logs").mkdir()
    env = env_for(tmp_path, cluster_url, prefix, sandbox_proc)
    env["BROKER_URL"] = AMQP_URL
    stack = Stack(env, tmp_path / "logs")
    client = connect(cluster_url)
    try:
        stack.start_web(WEB_ARGV)
        stack.start("worker", WORKER_ARGV)
        stack.start("scheduler", SCHEDULER_ARGV)
        now = datetime.now(UTC)
        newest: dict[tuple[tuple[int, int], int], bool] = {}
        for round_, age_s in enumerate((5, 20, 2, 12)):  # out of order: the third round is the newest
            at = now - timedelta(seconds=age_s)
            enabled = round_ % 2 == 0
            for store in STORES:
                response = stack.post_changes([availability(f"c{round_}-{store}", ITEMS, enabled, at, store)])
                assert response.status_code == 202, response.text
                for item in ITEMS:
                    if round_ == 2:
                        newest[(store, item)] = enabled
        ledger = Ledger(client, Keys(prefix))

        def settled() -> bool:
            return (
                all(
                    (published_item(sandbox_proc, store, item) or {}).get("enabled") is value
                    for (store, item), value in newest.items()
                )
                and ledger.pending_count(398) == 0
            )

        try:
            wait_for(settled, timeout=60, what="every target published at its newest value on the cluster")
        except AssertionError:
            print(stack.log_tail())
            raise
        view = ledger.view(398)
        assert len(view) == len(STORES) * len(ITEMS)
        assert all(state.settled for state in view.values()), "every target applied at its desired version"
        assert "Traceback" not in stack.log_tail()
    finally:
        stack.stop()
        delete_prefix(client, prefix)
        client.close()
