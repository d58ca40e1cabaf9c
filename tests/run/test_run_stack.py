"""The stack's processes, started exactly as the Procfile names them, carry a change to klikit's published menu.

Sandbox, web, worker and scheduler run as subprocesses on the test Redis under a prefix of their own.
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from typing import Any

from run_support import (
    BUSINESS,
    STORES,
    Stack,
    availability,
    publish_stores,
    published_item,
    visibility,
)

from config.redis import Keys
from devstack.stack import SCHEDULER_ARGV, WEB_ARGV, WORKER_ARGV, wait_for


def test_a_change_through_v1_changes_ends_published(stack: Stack, sandbox_proc: Any) -> None:
    stack.start_web(WEB_ARGV)
    stack.start("worker", WORKER_ARGV)
    stack.start("scheduler", SCHEDULER_ARGV)
    at = datetime.now(UTC) - timedelta(seconds=5)
    response = stack.post_changes([availability("run-1", [101], False, at, STORES[0])])
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 1
    try:
        wait_for(
            lambda: (published_item(sandbox_proc, STORES[0], 101) or {}).get("enabled") is False,
            timeout=30,
            what="item 101 published disabled",
        )
    except AssertionError:
        print(stack.log_tail())
        raise
    # The other stores were not touched, so not published.
    assert published_item(sandbox_proc, STORES[1], 101) is None
    assert all(p.alive() for p in stack.procs)


def test_sigterm_to_the_worker_mid_burst_loses_nothing(
    stack: Stack, sandbox_proc: Any, stack_redis: Any, stack_prefix: str
) -> None:
    # Every write takes 60 ms in klikit, and visibility changes plan one call each: the burst takes seconds.
    sandbox_proc.set_faults(latency_ms=60, writes_only=True)
    publish_stores(sandbox_proc)  # live stores: their published menus show the items
    stack.start_web(WEB_ARGV)
    first = stack.start("worker", WORKER_ARGV)
    base = datetime.now(UTC) - timedelta(minutes=1)
    changes = [
        visibility(f"burst-v{i}", 200 + i, {"1": i % 2 == 0, "6": False}, base + timedelta(milliseconds=i), STORES[0])
        for i in range(40)
    ]
    changes += [
        availability(f"burst-a{i}", [300 + i], False, base + timedelta(milliseconds=i), STORES[i % 3])
        for i in range(30)
    ]
    half = len(changes) // 2
    for start in range(0, half, 10):
        assert stack.post_changes(changes[start : min(start + 10, half)]).status_code == 202
    writes = lambda: [c for c in sandbox_proc.calls(business_id=BUSINESS) if c["method"] == "PATCH"]  # noqa: E731
    wait_for(lambda: len(writes()) >= 3, timeout=20, what="the flush to be under way")
    # A graceful stop, as a platform sends it: SIGTERM to the worker's main process, while the burst goes on.
    assert first.proc is not None
    os.kill(first.proc.pid, signal.SIGTERM)
    for start in range(half, len(changes), 10):
        assert stack.post_changes(changes[start : start + 10]).status_code == 202
    assert first.proc.wait(timeout=30) == 0
    keys = Keys(stack_prefix)
    stack.start("worker", WORKER_ARGV)
    stack.start("scheduler", SCHEDULER_ARGV)

    def settled() -> bool:
        return (
            stack_redis.zcard(keys.business(BUSINESS, "pending")) == 0
            and not stack_redis.exists(keys.business(BUSINESS, "publish"))
            and not stack_redis.exists(keys.business(BUSINESS, "lease"))
        )

    try:
        wait_for(settled, timeout=45, what="every change applied and published")
    except AssertionError:
        print(stack.log_tail())
        raise
    state = sandbox_proc.state(BUSINESS)["effective_published"]
    for i in range(40):
        row = state["5297:1293"]["item"][str(200 + i)]
        assert row["visibilities"]["1"] is (i % 2 == 0) and row["visibilities"]["6"] is False, i
    for i in range(30):
        store = STORES[i % 3]
        assert state[f"{store[0]}:{store[1]}"]["item"][str(300 + i)]["enabled"] is False, i
    assert stack_redis.zcard(keys.group("dlq", "index")) == 0
    applied = [c["idempotency_key"] for c in writes() if c["applied"]]
    assert len(applied) == len(set(applied)), "a write was applied twice"
