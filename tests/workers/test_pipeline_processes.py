"""End to end with worker *processes*: serialization across processes (I6) and SIGKILL (I1).

Workers run as ``dramatiq workers.actors`` subprocesses, as the Procfile names them.
"""

from __future__ import annotations

import itertools
import random
import time
from pathlib import Path
from typing import Any

from pipeline_support import BUSINESS, STORES, Pipeline, item_change, start_worker, wait_for

from devstack.stack import ServiceProcess
from workers.actors import flush_business
from workers.changes import Change, Target
from workers.sweeper import sweep_once


def test_i6_two_worker_processes_never_overlap_writes_for_one_business(
    make_pipeline: Any, workers: list[ServiceProcess], worker_env: dict[str, str], tmp_path: Path
) -> None:
    p: Pipeline = make_pipeline(start=False)  # producer side only; the workers are the subprocesses
    latency_ms = 40
    p.sandbox.set_faults(latency_ms=latency_ms, writes_only=True)
    start_worker(workers, worker_env, tmp_path)
    start_worker(workers, worker_env, tmp_path)
    base = 1_795_000_700_000
    rng = random.Random(3)
    for wave in range(12):
        changes = [
            item_change(101 + rng.randrange(150), enabled=rng.random() < 0.5, at_ms=base + wave * 100 + i, store=s)
            for i, s in enumerate(STORES * 4)
        ]
        # Visibility changes plan one call per item and store: many writes to interleave.
        for i in range(3):
            for provider, visible in ((1, True), (6, wave % 2 == 0)):
                t = Target(
                    business_id=BUSINESS,
                    store=STORES[i],
                    level="item",
                    entity_id=300 + wave,
                    field="visibilities",
                    provider=provider,
                )
                changes.append(Change(id=f"v{wave}-{i}", target=t, value=visible, occurred_at_ms=base + wave))
        p.submit(changes)
        # Force both processes to compete: extra flush messages beside the nudge's own.
        flush_business.send(BUSINESS)
        flush_business.send(BUSINESS)
        time.sleep(0.03)
    p.wait_settled(timeout=60)
    writes = sorted(p.writes(), key=lambda c: c["ts"])
    assert len(writes) >= 15
    gaps = [b["ts"] - a["ts"] for a, b in itertools.pairwise(writes)]
    # Each write takes at least latency_ms inside klikit; a write starting sooner after the
    # previous one started would have overlapped it.
    overlapping = [g for g in gaps if g < (latency_ms - 5) / 1000]
    assert overlapping == []
    assert all(w.alive() for w in workers)


def test_i1_a_worker_killed_with_sigkill_mid_flush_loses_nothing(
    make_pipeline: Any, workers: list[ServiceProcess], worker_env: dict[str, str], tmp_path: Path
) -> None:
    p: Pipeline = make_pipeline(start=False)
    p.sandbox.set_faults(latency_ms=150, writes_only=True)
    victim = start_worker(workers, worker_env, tmp_path)
    base = 1_795_000_800_000
    changes = []
    for i in range(60):
        target_item = 101 + i
        changes.append(item_change(target_item, enabled=False, at_ms=base + i, store=STORES[i % 3]))
    # Visibility changes plan one call per item and store, so the flush is still running when it is killed.
    for i in range(20):
        for provider, visible in ((1, False), (6, True)):
            t = Target(
                business_id=BUSINESS,
                store=STORES[0],
                level="item",
                entity_id=200 + i,
                field="visibilities",
                provider=provider,
            )
            changes.append(Change(id=f"v{i}", target=t, value=visible, occurred_at_ms=base + i))
    p.submit(changes)
    wait_for(lambda: len(p.writes()) >= 3, timeout=20, what="the flush to be under way")
    victim.kill()
    written_before = len(p.writes())
    assert p.rt.ledger.pending_count(BUSINESS) > 0, "the kill came too late to test anything"
    start_worker(workers, worker_env, tmp_path)

    # The scheduler's sweeper is the safety net for the killed worker's in-flight message.
    def swept_and_settled() -> bool:
        sweep_once()
        return p.settled(BUSINESS)

    wait_for(swept_and_settled, timeout=60, interval=0.5, what="the pipeline to recover")
    state = p.sandbox.state(BUSINESS)["effective_published"]
    for c in changes:
        row = state[c.target.store.key()]["item"][str(c.target.entity_id)]  # type: ignore[union-attr]
        if c.target.field == "enabled":
            assert row["enabled"] is False
        else:
            assert row["visibilities"].get(str(c.target.provider), False) is c.value
    assert len(p.writes()) > written_before
    applied = [w["idempotency_key"] for w in p.writes() if w["applied"]]
    assert len(applied) == len(set(applied)), "a write was applied twice"
