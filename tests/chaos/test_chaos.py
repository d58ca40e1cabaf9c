"""Chaos: the lunch rush (scaled) with workers killed, Redis restarted and a faulty klikit.

At the end: every target's value in the sandbox's published menus equals its newest change, no
change is lost (each target applied or dead-lettered), no write applied twice, the dead letters are
exactly the injected permanent faults that refused a single-target write (a refused bulk write is
split, and its halves go through), and menusync never caused a 409 of its own.
The short run is part of CI; the full one (``-m full``) runs longer with more businesses.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chaos_support import ChaosConfig, check, fault_summary, run_chaos

from devstack.redis_cluster import AMQP_URL, rabbitmq_unreachable, running_cluster


def _run(config: ChaosConfig, tmp_path: Path, *, redis_restarts: int = 1) -> None:
    result = run_chaos(config, tmp_path)
    summary = fault_summary(result)
    problems = check(result, config.permanent_faults)
    logs = "\n\n".join(f"--- {name}\n{text}" for name, text in result.logs.items() if text)
    assert problems == [], f"{problems}\nrun: {summary}\n{logs[-6000:]}"
    # The chaos really happened.
    assert result.kills >= 2 and result.redis_restarts == redis_restarts, summary
    assert summary.get("status_502", 0) > 0, summary


def test_chaos_short(tmp_path: Path) -> None:
    _run(ChaosConfig(), tmp_path)


@pytest.mark.rabbitmq
def test_chaos_short_on_a_redis_cluster_with_rabbitmq(tmp_path: Path) -> None:
    """The same run with the state on a real 3-primary Redis Cluster and the messages on RabbitMQ
    (workers killed and a faulty klikit; the cluster's nodes are not restarted)."""
    reason = rabbitmq_unreachable(AMQP_URL)
    if reason:
        pytest.skip(reason)
    with running_cluster(tmp_path / "cluster") as cluster_url:
        _run(ChaosConfig(cluster_url=cluster_url, broker_url=AMQP_URL), tmp_path, redis_restarts=0)


@pytest.mark.full
def test_chaos_full(tmp_path: Path) -> None:
    _run(
        ChaosConfig(
            businesses=10,
            deliveries=5_000,
            duration_s=40.0,
            kill_every_s=3.0,
            redis_restart_at_s=20.0,
            permanent_faults=4,
            settle_timeout_s=300.0,
        ),
        tmp_path,
    )
