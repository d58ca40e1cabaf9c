"""menusync's state on a real Redis Cluster: every script stays in one slot and the ledger's
invariants (latest wins, the sweeper finds what is pending) hold across the cluster's nodes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from config.redis import Keys, connect, delete_prefix, shard_of
from config.settings import Settings
from workers.changes import Change, Store, Target
from workers.ledger import Ledger
from workers.scripts import CrossSlotError, run_scripts, script

STORE = Store(brand_id=1, branch_id=1)


def _change(business: int, item: int, value: bool, at: int) -> Change:
    target = Target(business_id=business, store=STORE, level="item", entity_id=item, field="enabled")
    return Change(id=f"c-{uuid.uuid4().hex[:8]}", target=target, value=value, occurred_at_ms=at)


@pytest.fixture
def cluster(cluster_url: str) -> Any:
    client = connect(cluster_url)
    prefix = f"mstest-cluster-{uuid.uuid4().hex[:6]}"
    yield client, Keys(prefix)
    delete_prefix(client, prefix)
    client.close()


def test_the_state_of_businesses_on_every_node_records_latest_wins_and_is_found_by_the_sweeper(cluster: Any) -> None:
    client, keys = cluster
    ledger = Ledger(client, keys)
    businesses = list(range(1, 41))
    assert len({shard_of(b) for b in businesses}) > 20  # many shards, hence every node
    nodes = {client.get_node_from_key(keys.business(b, "pending")).name for b in businesses}
    assert len(nodes) == 3
    flush: set[int] = set()
    ledger.record([_change(b, 1, False, 2_000) for b in businesses], flush_to_send=flush)
    older = ledger.record([_change(b, 1, True, 1_000) for b in businesses])
    assert older == [None] * len(businesses), "an older change never wins"
    assert flush == set(businesses)
    assert ledger.businesses() == businesses
    for b in businesses:
        (row,) = ledger.pending(b)
        assert row.value is False
    # The sweeper's claim, one script per shard in one pipeline over the nodes, sees every business.
    index = [
        ([keys.attention(kind, s) for kind in ("pending", "suspect", "publish")], [10**13, 0, 0, 5_000, 10_000])
        for s in keys.shards()
    ]
    claimed = sorted(int(b) for reply in run_scripts(client, "attention_claim", index) for b in reply)
    assert claimed == businesses


def test_a_script_whose_keys_span_slots_is_refused_before_it_runs(cluster: Any) -> None:
    client, keys = cluster
    a, b = 1, next(b for b in range(2, 100) if shard_of(b) != shard_of(1))
    with pytest.raises(CrossSlotError, match="settle touches 2 cluster slots"):
        script(client, "settle")(
            keys=[keys.business(a, "dver"), keys.business(b, "aver"), keys.business(a, "pending")],
            args=[0, "applied", ""],
        )


def test_a_cluster_needs_rabbitmq_for_the_messages(cluster_url: str) -> None:
    with pytest.raises(ValidationError, match="BROKER_URL=amqp://"):
        Settings(redis_url=cluster_url)  # type: ignore[call-arg]
    nodes = cluster_url.removeprefix("redis+cluster://")
    settings = Settings(redis_cluster_nodes=nodes, broker_url="amqp://guest:guest@127.0.0.1:5672/")  # type: ignore[call-arg]
    assert settings.redis_url == cluster_url
