"""Fairness across businesses: how long one flush may hold its worker thread, and on which lane.

A Dramatiq queue is one FIFO and a worker has a fixed number of threads. When more businesses
are busy than there are threads and klikit answers slowly, a quiet business's one-change flush
would wait behind every busy flush, each holding its thread for as long as its backlog lasts.
Two lanes keep small flushes quick (design.md, "Fairness"):

- every nudge sends its flush to the **fresh** lane (``<prefix>-flush``), whose actor has the
  higher priority: a worker thread that comes free takes a fresh flush before a backlog one;
- a fresh flush whose round plans more than ``fresh_max_calls`` calls hands the business over
  to the **backlog** lane (``<prefix>-flush-backlog``) before its first call;
- any flush yields once it has held its thread for ``slice_ms`` (checked before each call and
  before sleeping for the rate budget) and re-queues itself at the back of the backlog lane.

So a thread comes free at least about every slice plus one call, and a fresh flush waits only
for the next free thread. Yielding loses nothing: what was not written stays pending in the
ledger and the next slice plans it again.

Everything here is pure: :func:`decide_slice` is property-tested.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Lane(enum.Enum):
    FRESH = "fresh"
    BACKLOG = "backlog"


class SliceStep(enum.Enum):
    GO = "go"
    """Make the next call (or sleep for the rate budget, then make it)."""
    YIELD = "yield"
    """Stop here and re-queue the business on the backlog lane."""


@dataclass(frozen=True)
class SlicePolicy:
    slice_ms: int
    """The longest a flush holds its thread before it yields (a call in flight finishes first)."""
    fresh_max_calls: int
    """The most calls a round of a fresh-lane flush may plan; more go to the backlog lane."""


def decide_slice(
    policy: SlicePolicy,
    lane: Lane,
    *,
    elapsed_ms: int,
    calls_made: int,
    calls_left: int,
    wait_ms: int = 0,
) -> SliceStep:
    """Whether a flush on ``lane`` makes its next call or yields.

    ``elapsed_ms``: how long this flush has held its thread; ``calls_made``: calls this flush has
    sent; ``calls_left``: calls still planned in this round, the next one included; ``wait_ms``: how
    long the rate budget asks it to sleep before the next call. The first call of a flush always
    goes (on the backlog lane, or a small round on the fresh one), so every slice makes progress.
    """
    if lane is Lane.FRESH and calls_made == 0 and calls_left > policy.fresh_max_calls:
        return SliceStep.YIELD
    if calls_made == 0:
        return SliceStep.GO
    if elapsed_ms + wait_ms >= policy.slice_ms:
        return SliceStep.YIELD
    return SliceStep.GO
