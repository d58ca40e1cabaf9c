"""What the sweeper does about one business it claimed: a pure decision over what one script read.

The sweeper (``workers.sweeper``) reads each claimed business in one script (``sweep_look.lua``,
pipelined over every business of the pass), decides here, then acts. The decision also says when the
business could next need the sweeper for its flush (``flush_recheck_at_ms``): a business whose flush
message is believed queued, whose lease is held, or which the sweeper has just re-nudged is filed in
the pending index no earlier than that, so a pass under a backlog looks only at the businesses it
could do something for, and a business gets at most one extra flush message from the sweeper per
:attr:`SweepLimits.renudge_ms` however long the queue is. A new pending target files the business
earlier again (``ZADD LT`` in the recording scripts): an entry may be early, never late.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from workers.queue_wait import WAIT_MAX_MS

#: How long past its due time a scheduled flush message may be missing before the sweeper sends another.
SCHEDULED_GRACE_MS = 3_000


class FlushStep(Enum):
    """The sweeper's flush step for one business."""

    NONE = "none"  # nothing pending for longer than the stale age
    NUDGE = "nudge"  # stranded: send a forced flush message
    WATCH = "watch"  # its lease is held and nobody waits for it: become the watcher of its expiry
    LEASED = "leased"  # its lease is held and a flush already waits for it
    SCHEDULED = "scheduled"  # a flush message is believed queued (its flag is not overdue yet)
    BLOCKED = "blocked"  # its credential is blocked: flushes stop on purpose
    RENUDGED = "renudged"  # the sweeper re-nudged it less than ``renudge_ms`` ago


@dataclass(frozen=True)
class BusinessLook:
    """What ``sweep_look.lua`` read of one business, in one step."""

    oldest_pending_ms: int | None
    blocked: bool
    lease_ms: int  # remaining ms of the flush lease; 0 when free
    watched: bool  # a flush already waits for the lease to expire
    scheduled_ms: int | None  # the ``flush:scheduled`` flag: when its message is due
    renudged_ms: int  # remaining ms of the sweeper's own re-nudge mark; 0 when none
    publish_scheduled_ms: int | None
    publish_first_ms: int | None

    @classmethod
    def from_reply(cls, reply: Sequence[object]) -> BusinessLook:
        """Parse the script's reply: eight fields, ``''`` for a missing time."""

        def time(value: object) -> int | None:
            text = value.decode() if isinstance(value, bytes) else str(value)
            return int(float(text)) if text else None

        oldest, blocked, lease, watched, scheduled, renudged, published, first = reply
        return cls(
            oldest_pending_ms=time(oldest),
            blocked=bool(int(str(blocked))),
            lease_ms=max(0, int(str(lease))),
            watched=bool(int(str(watched))),
            scheduled_ms=time(scheduled),
            renudged_ms=max(0, int(str(renudged))),
            publish_scheduled_ms=time(published),
            publish_first_ms=time(first),
        )


@dataclass(frozen=True)
class SweepLimits:
    """The sweeper's timings, in ms."""

    stale_ms: int  # pending longer than this is stranded
    publish_stale_ms: int  # a scheduled publish with no sign of life this long is stranded
    scheduled_grace_ms: int  # how long past due a ``flush:scheduled`` flag still counts
    flush_window_ms: int  # the delay of a nudge's flush message
    watch_slack_ms: int  # a watcher's flush runs this long after the lease expires
    recheck_ms: int  # a blocked business is looked at again after this
    renudge_ms: int  # at most one forced flush message per business per this long


@dataclass(frozen=True)
class SweepStep:
    flush: FlushStep
    resend_publish: bool
    #: No earlier than this can the flush side need the sweeper (``None``: at its real time).
    flush_recheck_at_ms: int | None

    @property
    def stale(self) -> bool:
        return self.flush is not FlushStep.NONE


def decide_sweep(look: BusinessLook, now: int, limits: SweepLimits) -> SweepStep:
    """The sweeper's step for one claimed business, in the order of design.md section 1.5."""
    flush, recheck = _flush_step(look, now, limits)
    resend = False
    if look.publish_scheduled_ms is not None:
        newest_sign_of_life = max(look.publish_scheduled_ms, look.publish_first_ms or 0)
        resend = now - newest_sign_of_life >= limits.publish_stale_ms
    return SweepStep(flush=flush, resend_publish=resend, flush_recheck_at_ms=recheck)


def _flush_step(look: BusinessLook, now: int, limits: SweepLimits) -> tuple[FlushStep, int | None]:
    oldest = look.oldest_pending_ms
    if oldest is None or now - oldest < limits.stale_ms:
        return FlushStep.NONE, None
    if look.blocked:
        return FlushStep.BLOCKED, now + limits.recheck_ms
    if look.lease_ms:
        if look.watched:
            return FlushStep.LEASED, now + look.lease_ms
        # The watcher's flush runs at expiry + slack; only if that flush is lost is there more to do.
        return FlushStep.WATCH, now + look.lease_ms + limits.watch_slack_ms + limits.scheduled_grace_ms
    if look.scheduled_ms is not None:
        trusted_until = flag_trusted_until_ms(look.scheduled_ms, limits.flush_window_ms, limits.scheduled_grace_ms)
        if now <= trusted_until:
            return FlushStep.SCHEDULED, trusted_until + 1
    if look.renudged_ms:
        # Its flag is overdue, but the sweeper's own message is not: a queue is long, not lost.
        return FlushStep.RENUDGED, now + look.renudged_ms
    return FlushStep.NUDGE, now + limits.renudge_ms


def flag_trusted_until_ms(flag_ms: int, flush_window_ms: int, scheduled_grace_ms: int) -> int:
    """The last time a ``flush:scheduled`` flag holding ``flag_ms`` still stands for a queued message."""
    return flag_ms + flush_window_ms + scheduled_grace_ms


def attention_hold_ms(*, stale_ms: int, flush_window_ms: int, wait_ms: int) -> int:
    """How far past its flush flag's time the intake files a business that becomes pending in the
    sweeper's pending index (``record.lua``: at ``max(now, flag + hold)``, a raw score that comes due
    ``stale_ms`` later). That is the first moment :func:`decide_sweep` no longer trusts the flag, with
    the flush queue's wait ``wait_ms`` as the intake last read it: under a long queue a pass then
    does not claim every business that is merely waiting its turn. May be negative (filed at now)."""
    return flag_trusted_until_ms(0, flush_window_ms, flag_grace_ms(wait_ms)) + 1 - stale_ms


def flag_grace_ms(wait_ms: int) -> int:
    """How long past its due time a ``flush:scheduled`` flag is still trusted: the grace plus the
    flush queue's wait (never negative, capped at ``WAIT_MAX_MS``)."""
    return SCHEDULED_GRACE_MS + min(max(0, wait_ms), WAIT_MAX_MS)
