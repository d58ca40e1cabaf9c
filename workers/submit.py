"""The one way changes enter the pipeline: record them in the ledger, which nudges the flushes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from workers.changes import Change
from workers.ledger import Ledger
from workers.metrics import CHANGES_RECORDED, CHANGES_SUPERSEDED
from workers.runtime import runtime


class ReplicasBehind(redis.RedisError):
    """Fewer Redis replicas than ``MENUSYNC_REDIS_MIN_REPLICAS_ACK`` acknowledged a record in time.

    The change is recorded on the master but may be lost in a failover: intake answers 503 so
    that the sender retries (a repeat of a recorded change is a duplicate).
    """

    def __init__(self, wanted: int, acked: int) -> None:
        super().__init__(f"{acked} of {wanted} redis replicas acknowledged the record in time")
        self.wanted = wanted
        self.acked = acked


@dataclass(frozen=True)
class RecordOutcome:
    won: bool
    version: str | None
    """The version the change was recorded at, when it won."""
    duplicate: bool = False
    """Same target, event time and value as the stored change: nothing recorded, nothing to write."""
    delivered: bool = False
    """The webhook delivery that carried the change was recorded before: nothing looked at."""


@dataclass(frozen=True)
class SubmitResult:
    accepted: int
    superseded: int
    outcomes: list[RecordOutcome]
    duplicate: int = 0


def submit_changes(
    changes: Sequence[Change],
    *,
    expect_versions: Sequence[str | None] | None = None,
    source: str = "api",
    actor: str = "",
    received_ms: int | None = None,
) -> SubmitResult:
    """Record ``changes`` (newest version per target wins) and nudge the flush of each business touched.

    ``expect_versions[i]``, when given, records change ``i`` only if its target's desired
    version is still exactly that (timed re-enable: unless a newer change came first).
    ``source``, ``actor`` (token name, operator) and ``received_ms`` go into the change history.
    """
    from workers.actors import send_flush

    if not changes:
        return SubmitResult(0, 0, [])
    rt = runtime()
    to_send: set[int] = set()
    same: set[int] = set()
    min_acks = rt.settings.redis_min_replicas_ack
    # WAIT counts the writes of its own connection: the record and the WAIT share one.
    conn = redis.Redis(connection_pool=rt.redis.connection_pool, single_connection_client=True) if min_acks else None
    try:
        # A connection re-established on the way (failover: redis-py retries on the new master)
        # has a new client id; WAIT then speaks for none of the earlier writes.
        client_id = conn.client_id() if conn is not None else None
        ledger = Ledger(conn, rt.keys) if conn is not None else rt.ledger
        versions = ledger.record(
            changes,
            expect_versions,
            flag_ttl_ms=rt.flush_flag_ttl_ms(),
            attention_hold_ms=rt.attention_hold_ms(),
            flush_to_send=to_send,
            duplicates=same,
            source=source,
            actor=actor,
            received_ms=received_ms,
            history_max=rt.settings.history_max_per_business,
        )
        outcomes = [RecordOutcome(won=v is not None, version=v, duplicate=i in same) for i, v in enumerate(versions)]
        accepted = sum(o.won for o in outcomes)
        superseded = len(outcomes) - accepted - len(same)
        if accepted:
            CHANGES_RECORDED.labels(source=source).inc(accepted)
            for business_id in sorted(to_send):
                send_flush(business_id)
        if superseded:
            CHANGES_SUPERSEDED.labels(source=source).inc(superseded)
        if conn is not None:
            # After the nudges: a record the replicas did not confirm is still flushed from this master.
            acked = int(conn.wait(min_acks, rt.settings.redis_ack_timeout_ms))
            if conn.client_id() != client_id:
                acked = 0
            if acked < min_acks:
                raise ReplicasBehind(min_acks, acked)
    finally:
        if conn is not None:
            conn.close()
    return SubmitResult(accepted=accepted, superseded=superseded, outcomes=outcomes, duplicate=len(same))
