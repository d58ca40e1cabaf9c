"""How late flush messages start: the flush queue's wait, as the sweeper needs to know it.

A ``flush:scheduled`` flag goes overdue for two reasons: its message was lost, or it waits behind a
long queue (every worker busy). The sweeper can only tell them apart by how late flush messages
start right now. The :class:`workers.middleware.QueueWaitNote` middleware notes, as each flush
message starts, how long past its due time that was (:func:`message_wait_ms`), per lane, in a key
that lives :data:`WAIT_TTL_MS` (so the measure falls back to nothing once flushes stop starting
late); the sweeper trusts a flag that much longer (:meth:`QueueWait.current_ms`, capped at
:data:`WAIT_MAX_MS`, so that a lost message under a long queue is still re-sent within minutes).
"""

from __future__ import annotations

from typing import Any

from config.redis import Keys

#: A noted wait counts this long after the flush that noted it started.
WAIT_TTL_MS = 30_000
#: The sweeper never trusts an overdue flag longer than this on account of the queue's wait.
WAIT_MAX_MS = 300_000
#: The lanes whose wait is noted (``workers.queues.LANES``): the flush lanes a flag's message is on.
FLUSH_LANES = ("flush", "flush-backlog")


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
        waits = [int(v) for v in pipe.execute() if v is not None]
        return min(max(waits, default=0), WAIT_MAX_MS)
