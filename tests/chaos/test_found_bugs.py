"""Bugs the benchmarks and the chaos harness ran into; each test guards its fix.

1. ``EmbeddedRedis.stop()`` (devstack/embedded_redis.py) sends ``SHUTDOWN SAVE NOW``; the bundled
   redis-server 6.2 answers "syntax error" (``NOW`` came with Redis 7), the error is suppressed,
   and the server keeps running: an embedded Redis with a client connected is never stopped (the
   test runs leave redis-server processes behind), and a stop/start on the same port and directory
   restarts nothing.
2. The planner (workers/planner.py ``_group_by_store_set``) folds enable targets by each entity's
   exact *set* of stores, so one flush of a burst over 3 stores needs up to 2 x (2**3 - 1) = 14
   calls where one call per (value, store) -- 6 -- covers it (the workers issue's target for a
   burst of 1,000 changes over 200 items and 3 stores: <= 6 writes; bench/burst.py measures 14).
"""

from __future__ import annotations

import contextlib
import random
import tempfile
from pathlib import Path

import redis

from devstack.embedded_redis import EmbeddedRedis, reachable
from workers.changes import Store, Target, make_version
from workers.ledger import PendingRow
from workers.planner import PlanContext, plan_calls


def test_embedded_redis_stop_stops_the_server_even_with_a_client_connected() -> None:
    server = EmbeddedRedis.start(data_dir=Path(tempfile.mkdtemp(prefix="menusync-stop-")))
    client = redis.Redis(host="127.0.0.1", port=server.port)
    client.set("k", "v")
    try:
        server.stop()
        still_up = reachable(server.url)
    finally:
        if reachable(server.url):  # clean up what stop() left running
            with contextlib.suppress(redis.ConnectionError):
                client.shutdown(nosave=True)
    assert not still_up, "EmbeddedRedis.stop() left the server running"


def test_a_burst_over_three_stores_plans_at_most_one_call_per_value_and_store() -> None:
    rng = random.Random(1)
    stores = [
        Store(brand_id=5297, branch_id=1293),
        Store(brand_id=5297, branch_id=5913),
        Store(brand_id=1615, branch_id=1294),
    ]
    latest: dict[tuple[Store, int], bool] = {}
    for _ in range(1000):
        latest[(rng.choice(stores), rng.randint(101, 300))] = rng.random() < 0.5
    rows = [
        PendingRow(
            target=Target(business_id=398, store=store, level="item", entity_id=item, field="enabled"),
            value=value,
            version=make_version(1_800_000_000_000 + n, n),
            change_id=f"c{n}",
        )
        for n, ((store, item), value) in enumerate(sorted(latest.items(), key=lambda kv: (kv[0][0].key(), kv[0][1])))
    ]
    calls = plan_calls(rows, PlanContext(business_id=398, all_stores=tuple(stores), provider_ids=(1, 6)))
    covered = {key for call in calls for key, _ in call.targets}
    assert covered == {r.target.key() for r in rows}
    groups = {(r.target.store, r.value) for r in rows}
    assert len(calls) <= len(groups), f"{len(calls)} calls for {len(groups)} (store, value) groups"
