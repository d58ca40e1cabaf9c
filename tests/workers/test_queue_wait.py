"""How late flush messages start: measured per message, noted per lane by a worker's middleware."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from workers.queue_wait import WAIT_MAX_MS, QueueWait, message_wait_ms


@given(sent=st.integers(0, 10**12), delay=st.integers(0, 10**6), late=st.integers(-(10**6), 10**6))
def test_a_message_waits_from_its_due_time_never_less_than_nothing(sent: int, delay: int, late: int) -> None:
    eta = sent + delay
    now = max(sent, eta + late)
    assert message_wait_ms({"eta": eta}, sent, now) == max(0, now - eta)
    assert message_wait_ms({}, sent, now) == now - sent  # sent without a delay: due when sent


def test_a_worker_notes_how_late_each_flush_message_started(r: Any) -> None:
    """A real message through the broker's middleware stack: the flush lane's wait is noted, another
    lane's is not, and the sweeper reads the longest, capped."""
    import workers.actors
    from workers.middleware import QueueWaitNote
    from workers.runtime import runtime

    rt = runtime()
    waits = QueueWait(rt.redis, rt.keys)
    note = next(m for m in workers.actors.broker.middleware if isinstance(m, QueueWaitNote))
    flush = workers.actors.flush_business.message_with_options(args=(1,), delay=0)
    late = flush.copy(options={"eta": flush.message_timestamp - 42_000})
    note.before_process_message(workers.actors.broker, late)
    assert 42_000 <= int(r.get(waits.key("flush"))) < 52_000
    assert r.pttl(waits.key("flush")) > 0  # it falls back to nothing once flushes stop starting late
    publish = workers.actors.publish_business.message_with_options(args=(1,), delay=0)
    late_publish = publish.copy(options={"eta": publish.message_timestamp - 99_000})
    note.before_process_message(workers.actors.broker, late_publish)
    assert waits.current_ms() < 52_000
    waits.note("flush-backlog", WAIT_MAX_MS * 3)
    assert waits.current_ms() == WAIT_MAX_MS
    r.delete(waits.key("flush"), waits.key("flush-backlog"))
