"""The publish debounce decision, exhaustively (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from workers.debounce import FLUSH_POLL_MS, PublishState, Verdict, decide

QUIET, MAX_WAIT = 3_000, 30_000


@given(
    first=st.integers(0, 10**6),
    gap=st.integers(0, 40_000),
    since_due=st.integers(-5_000, 50_000),
    busy=st.booleans(),
)
def test_decision_properties(first: int, gap: int, since_due: int, busy: bool) -> None:
    due = first + gap
    state = PublishState(generation=3, first_write_ms=first, due_ms=due)
    now = max(first, due + since_due)
    d = decide(state, now, max_wait_ms=MAX_WAIT, flush_busy=busy)
    deadline = first + MAX_WAIT
    if now >= deadline:
        assert d.verdict is Verdict.PUBLISH
    elif now < due:
        assert d.verdict is Verdict.WAIT
        assert 0 < d.delay_ms <= min(due, deadline) - now
    elif busy:
        assert d.verdict is Verdict.WAIT and 0 < d.delay_ms <= FLUSH_POLL_MS
    else:
        assert d.verdict is Verdict.PUBLISH
    if d.verdict is Verdict.WAIT:
        assert now + d.delay_ms <= deadline  # never waits past max_wait


def test_empty_state_does_nothing() -> None:
    assert decide(PublishState(0, 0, 0), 123, max_wait_ms=MAX_WAIT, flush_busy=False).verdict is Verdict.NOTHING


@given(st.lists(st.integers(1, QUIET - 1), min_size=1, max_size=200))
def test_a_burst_with_gaps_under_the_quiet_period_publishes_once_per_max_wait(gaps: list[int]) -> None:
    """Simulate the actor loop: writes at the given gaps; count publishes."""
    t, first, due, published, gen_pending = 0, None, 0, 0, False
    events = []
    for gap in gaps:
        t += gap
        events.append(t)
    clock, i = 0, 0
    while i < len(events) or gen_pending:
        # next write or next decision time
        if i < len(events) and (not gen_pending or events[i] <= clock):
            clock = max(clock, events[i])
            if first is None:
                first = clock
            due, gen_pending = clock + QUIET, True
            i += 1
            continue
        d = decide(PublishState(1, first or 0, due), clock, max_wait_ms=MAX_WAIT, flush_busy=False)
        if d.verdict is Verdict.PUBLISH:
            published, first, gen_pending = published + 1, None, False
        else:
            nxt = clock + d.delay_ms
            clock = min(nxt, events[i]) if i < len(events) else nxt
    span = events[-1] - events[0]
    assert 1 <= published <= 1 + span // MAX_WAIT + 1
    if span < MAX_WAIT:
        assert published == 1
