"""How late flush messages start: the flush queue's wait, as the sweeper needs to know it.

A ``flush:scheduled`` flag goes overdue for two reasons: its message was lost, or it waits behind a
long queue (every worker busy). The sweeper can only tell them apart by how late flush messages
start right now. The :class:`workers.middleware.QueueWaitNote` middleware notes, as each flush
message starts, how long past its due time that was (:func:`message_wait_ms`), per lane, in a key
that lives :data:`WAIT_TTL_MS` (so the measure falls back to nothing once flushes stop starting
late); the sweeper trusts a flag that much longer (:meth:`QueueWait.current_ms`, capped at
:data:`WAIT_MAX_MS`, so that a lost message under a long queue is still re-sent within minutes).

The intake sets a new flag for as long (:func:`flag_ttl_ms`, the wait read at most once a second
per process: :class:`RecentWait`): a flag that expired while its message still waited made the
next change of the business send another message, and under a long queue about every other
change did, lengthening the queue it waited in.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import redis

from config.redis import Keys

#: A noted wait counts this long after the flush that noted it started.
WAIT_TTL_MS = 30_000
#: The sweeper never trusts an overdue flag longer than this on account of the queue's wait.
WAIT_MAX_MS = 300_000
#: The lanes whose wait is noted (``workers.queues.LANES``): the flush lanes a flag's message is on.
FLUSH_LANES = ("flush", "flush-backlog")


#: How long a process reuses the wait it read (:class:`RecentWait`).
READ_EVERY_MS = 1_000


def flag_ttl_ms(lease_ttl_ms: int, wait_ms: int) -> int:
    """How long a new ``flush:scheduled`` flag lives: the lease TTL plus the wait a message sent
    now is expected to have (never negative, capped at :data:`WAIT_MAX_MS`)."""
    return lease_ttl_ms + min(max(0, wait_ms), WAIT_MAX_MS)


def longest_wait_ms(values: Sequence[Any]) -> int:
    """The longest of the lanes' noted waits (replies of GET, ``None`` when none), capped."""
    return min(max((int(v) for v in values if v is not None), default=0), WAIT_MAX_MS)


class RecentWait:
    """The flush queue's wait as one process last read it, read again once it is
    :data:`READ_EVERY_MS` old (thread-safe; an answer may be up to that old)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value_ms = 0
        self._read_at_ms: int | None = None

    def due(self, now_ms: int) -> bool:
        """Whether the value is too old to answer (or was never read)."""
        with self._lock:
            return self._read_at_ms is None or now_ms - self._read_at_ms >= READ_EVERY_MS

    def store(self, wait_ms: int, now_ms: int) -> int:
        with self._lock:
            self._value_ms, self._read_at_ms = wait_ms, now_ms
            return wait_ms

    @property
    def value_ms(self) -> int:
        with self._lock:
            return self._value_ms


def message_wait_ms(options: dict[str, Any], message_timestamp_ms: int, now_ms: int) -> int:
    """How long after it was due a message started: from its ``eta`` (a delayed message) or from when
    it was sent; never negative."""
    due = options.get("eta", message_timestamp_ms)
    try:
        return max(0, now_ms - int(due))
    except (TypeError, ValueError):
        return 0


class QueueWait:
    """The noted wait of each flush lane, in Redis (one key per lane, outside any business's slot)."""

    def __init__(self, client: Any, keys: Keys) -> None:
        self.r = client
        self.keys = keys

    def key(self, lane: str) -> str:
        return self.keys("queue_wait", lane)

    def note(self, lane: str, wait_ms: int) -> None:
        """The latest flush message of ``lane`` started ``wait_ms`` late (the latest is the queue's wait now)."""
        self.r.set(self.key(lane), int(wait_ms), px=WAIT_TTL_MS)

    def current_ms(self) -> int:
        """The longest noted wait over the flush lanes, capped at :data:`WAIT_MAX_MS` (0 when none)."""
        # Two independent measures, on two cluster slots (no MGET there); the longest is taken either way.
        pipe = self.r.pipeline(transaction=False)
        for lane in FLUSH_LANES:
            pipe.get(self.key(lane))
        return longest_wait_ms(pipe.execute())

    async def current_ms_async(self) -> int:
        """:meth:`current_ms` on an asyncio client."""
        pipe = self.r.pipeline(transaction=False)
        for lane in FLUSH_LANES:
            pipe.get(self.key(lane))
        return longest_wait_ms(await pipe.execute())

    def recent_ms(self, recent: RecentWait, now_ms: int) -> int:
        """:meth:`current_ms`, read at most once per :data:`READ_EVERY_MS` into ``recent``; a Redis
        that does not answer leaves the last value (the caller's own call will fail on it)."""
        if not recent.due(now_ms):
            return recent.value_ms
        try:
            return recent.store(self.current_ms(), now_ms)
        except (redis.RedisError, OSError):
            return recent.value_ms
