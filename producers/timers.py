"""Timed re-enables ("sold out until 22:00"), kept in Redis so that they survive restarts.

When a disabling change with ``until_ms`` wins in the ledger, a timer is stored with the version
that change got. At ``until_ms`` the scheduler records ``enabled = true`` for the target (change id
``<orig id>:until``, ``occurred_at_ms = until_ms``) with ``expect_versions=[that version]``: if a
newer change for the target came first, the ledger leaves it alone (the timer is *cancelled*).

Keys (``P`` the prefix)::

    P:timers:due         zset  timer id -> until_ms
    P:timers:processing  zset  timer id -> ms it was claimed
    P:timers:data        hash  timer id -> JSON {"change_id", "target", "until_ms", "expect_version"}

The timer id is ``<target key>@<version>`` (one per won change). A claim moves due timers to
``processing`` in one Lua call, so each is handed out once; ``complete`` removes it after the
re-enable is recorded. Timers claimed longer ago than a stale age (a scheduler that died between
claim and record) are moved back to ``due`` by :meth:`Timers.recover`, which the scheduler runs
on start and periodically; firing twice is harmless because of the version check.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from config.redis import Keys
from workers.changes import Change, Target
from workers.scripts import script


@dataclass(frozen=True)
class Timer:
    id: str
    change_id: str
    target: Target
    until_ms: int
    expect_version: str

    def reenable(self) -> Change:
        """The change the timer records: the target enabled again at ``until_ms``."""
        suffix = ":until"
        change_id = self.change_id[: 200 - len(suffix)] + suffix
        return Change(id=change_id, target=self.target, value=True, occurred_at_ms=self.until_ms)


class Timers:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self.due_key = keys.group("timers", "due")
        self.processing_key = keys.group("timers", "processing")
        self.data_key = keys.group("timers", "data")

    def __repr__(self) -> str:
        return f"Timers({self.keys!r})"

    @staticmethod
    def timer_id(target: Target, version: str) -> str:
        return f"{target.key()}@{version}"

    def schedule(self, items: Sequence[tuple[Change, str]]) -> list[str]:
        """Store one timer per (won change with ``until_ms``, the version it got). One round trip."""
        pipe = self.client.pipeline(transaction=True)
        ids = self.queue_schedule(pipe, items)
        if ids:
            pipe.execute()
        return ids

    def queue_schedule(self, pipe: Any, items: Sequence[tuple[Change, str]]) -> list[str]:
        """Queue what :meth:`schedule` stores on ``pipe`` (a sync or asyncio MULTI pipeline); answers the ids."""
        ids: list[str] = []
        for change, version in items:
            if change.until_ms is None:
                continue
            tid = self.timer_id(change.target, version)
            data = {
                "change_id": change.id,
                "target": change.target.key(),
                "until_ms": change.until_ms,
                "expect_version": version,
            }
            pipe.hset(self.data_key, tid, json.dumps(data, separators=(",", ":")))
            pipe.zadd(self.due_key, {tid: change.until_ms})
            ids.append(tid)
        return ids

    def claim_due(self, now_ms: int, limit: int = 500) -> tuple[list[Timer], list[str]]:
        """Atomically move timers due at ``now_ms`` to processing. Answers (timers, ids with bad data)."""
        reply: list[Any] = script(self.client, "timers_claim")(
            keys=[self.due_key, self.processing_key, self.data_key], args=[now_ms, limit, now_ms]
        )
        timers: list[Timer] = []
        broken: list[str] = []
        for tid, raw in zip(reply[0::2], reply[1::2], strict=True):
            try:
                data = json.loads(raw)
                timers.append(
                    Timer(
                        id=tid,
                        change_id=str(data["change_id"]),
                        target=Target.from_key(data["target"]),
                        until_ms=int(data["until_ms"]),
                        expect_version=str(data["expect_version"]),
                    )
                )
            except (TypeError, ValueError, KeyError):
                broken.append(tid)
        return timers, broken

    def complete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        pipe = self.client.pipeline(transaction=True)
        pipe.zrem(self.processing_key, *ids)
        pipe.hdel(self.data_key, *ids)
        pipe.execute()

    def recover(self, now_ms: int, stale_ms: int) -> int:
        """Move timers claimed at or before ``now_ms - stale_ms`` back to due. Answers how many."""
        return int(
            script(self.client, "timers_recover")(
                keys=[self.processing_key, self.due_key], args=[now_ms - stale_ms, now_ms]
            )
        )

    def next_due_ms(self) -> int | None:
        first = self.client.zrange(self.due_key, 0, 0, withscores=True)
        return int(first[0][1]) if first else None  # type: ignore[index]

    def counts(self) -> dict[str, int]:
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(self.due_key)
        pipe.zcard(self.processing_key)
        due, processing = pipe.execute()
        return {"due": int(due), "processing": int(processing)}
