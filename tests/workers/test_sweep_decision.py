"""The sweeper's per-business decision (pure): when it nudges, and that holding a business back never
makes it late."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from workers.queue_wait import WAIT_MAX_MS
from workers.sweep_decision import (
    SCHEDULED_GRACE_MS,
    BusinessLook,
    FlushStep,
    SweepLimits,
    attention_hold_ms,
    decide_sweep,
)

LIMITS = SweepLimits(
    stale_ms=5_000,
    publish_stale_ms=60_000,
    scheduled_grace_ms=3_000,
    flush_window_ms=100,
    watch_slack_ms=250,
    recheck_ms=10_000,
    renudge_ms=60_000,
)
NOW = 10**9

maybe_time = st.one_of(st.none(), st.integers(NOW - 200_000, NOW + 20_000))
looks = st.builds(
    BusinessLook,
    oldest_pending_ms=maybe_time,
    blocked=st.booleans(),
    lease_ms=st.one_of(st.just(0), st.integers(1, 20_000)),
    watched=st.booleans(),
    scheduled_ms=maybe_time,
    renudged_ms=st.one_of(st.just(0), st.integers(1, 60_000)),
    publish_scheduled_ms=maybe_time,
    publish_first_ms=maybe_time,
)


def _later(look: BusinessLook, d: int) -> BusinessLook:
    """The same business ``d`` ms later, nothing else having happened: its leases and marks ran down."""
    return replace(look, lease_ms=max(0, look.lease_ms - d), renudged_ms=max(0, look.renudged_ms - d))


@given(look=looks)
def test_a_business_is_nudged_only_when_nothing_else_will_flush_it(look: BusinessLook) -> None:
    step = decide_sweep(look, NOW, LIMITS)
    stale = look.oldest_pending_ms is not None and NOW - look.oldest_pending_ms >= LIMITS.stale_ms
    assert step.stale == stale
    if step.flush is FlushStep.NUDGE:
        assert not look.blocked and look.lease_ms == 0 and look.renudged_ms == 0
        assert look.scheduled_ms is None or look.scheduled_ms + LIMITS.flush_window_ms + LIMITS.scheduled_grace_ms < NOW
    if stale and look.blocked:
        assert step.flush is FlushStep.BLOCKED
    assert (step.flush_recheck_at_ms is None) == (not stale)


@given(look=looks, d=st.integers(0, 120_000))
def test_holding_a_business_back_never_hides_a_nudge(look: BusinessLook, d: int) -> None:
    step = decide_sweep(look, NOW, LIMITS)
    if step.flush_recheck_at_ms is None:
        return
    assert step.flush_recheck_at_ms > NOW
    if NOW + d >= step.flush_recheck_at_ms:
        return
    later = _later(look, d)
    if step.flush is FlushStep.NUDGE:  # what the nudge left behind: its flag and the re-nudge mark
        later = replace(later, scheduled_ms=NOW, renudged_ms=LIMITS.renudge_ms - d)
    if step.flush is FlushStep.WATCH:
        # What the watch left behind: a flush message due at the lease's expiry + slack, which the
        # sweeper trusts as long as a scheduled one (it carries no flag of its own).
        due = NOW + look.lease_ms + LIMITS.watch_slack_ms - LIMITS.flush_window_ms
        later = replace(later, watched=later.lease_ms > 0, scheduled_ms=max(due, look.scheduled_ms or due))
    assert decide_sweep(later, NOW + d, LIMITS).flush is not FlushStep.NUDGE


@given(
    flag=st.integers(NOW - 100_000, NOW + 1_000),
    recorded=st.integers(NOW - 100_000, NOW + 1_000),
    stale=st.integers(1, 600_000),
    window=st.integers(0, 5_000),
    wait=st.integers(0, 2 * WAIT_MAX_MS),
)
def test_a_held_back_business_comes_due_when_its_flag_stops_being_trusted_never_later(
    flag: int, recorded: int, stale: int, window: int, wait: int
) -> None:
    """record.lua files a business that becomes pending at ``max(now, flag + hold)``; the sweeper
    claims it ``stale`` later. Until then the sweeper would only have skipped it (its flag trusted);
    from then on, left alone, it would nudge it."""
    limits = replace(
        LIMITS, stale_ms=stale, flush_window_ms=window, scheduled_grace_ms=SCHEDULED_GRACE_MS + min(wait, WAIT_MAX_MS)
    )
    recorded = max(recorded, flag)  # the flag was set by this record or an earlier one
    score = max(recorded, flag + attention_hold_ms(stale_ms=stale, flush_window_ms=window, wait_ms=wait))
    due = score + stale
    look = BusinessLook(recorded, False, 0, False, flag, 0, None, None)
    assert decide_sweep(look, due, limits).flush is FlushStep.NUDGE
    if score > recorded:  # held back: one millisecond earlier the sweeper had nothing to do
        assert decide_sweep(look, due - 1, limits).flush in (FlushStep.SCHEDULED, FlushStep.NONE)


@given(look=looks)
def test_the_sweeper_nudges_a_long_queued_business_at_most_once_per_renudge_window(look: BusinessLook) -> None:
    # Its flag long overdue (the message waits behind a long queue), the sweeper re-nudged it 1 ms ago.
    queued = replace(look, blocked=False, lease_ms=0, scheduled_ms=NOW - 100_000, renudged_ms=LIMITS.renudge_ms - 1)
    assert decide_sweep(queued, NOW, LIMITS).flush in (FlushStep.NONE, FlushStep.RENUDGED)
    assert decide_sweep(replace(queued, renudged_ms=0), NOW, LIMITS).flush in (FlushStep.NONE, FlushStep.NUDGE)


@given(scheduled=st.integers(NOW - 200_000, NOW), first=maybe_time)
def test_a_publish_is_resent_only_after_no_sign_of_life_for_its_window(scheduled: int, first: int | None) -> None:
    look = BusinessLook(None, False, 0, False, None, 0, scheduled, first)
    life = max(scheduled, first or 0)
    assert decide_sweep(look, NOW, LIMITS).resend_publish == (NOW - life >= LIMITS.publish_stale_ms)


def test_a_look_reply_parses_missing_times_as_none() -> None:
    reply = ["1795000000000", 1, 4_000, 0, "", 0, "", "1795000000100"]
    look = BusinessLook.from_reply(reply)
    assert look == BusinessLook(1_795_000_000_000, True, 4_000, False, None, 0, None, 1_795_000_000_100)
