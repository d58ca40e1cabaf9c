"""The publish debounce decision (design.md section 5). Pure.

State per business: a generation bumped by every successful write, the time of the
first write not yet published, and the time the publish becomes due (last write +
quiet period). The publish actor asks :func:`decide` what to do now.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

#: How often a due publish re-checks while flushes of its business are still running.
FLUSH_POLL_MS = 100


class Verdict(enum.Enum):
    NOTHING = "nothing"
    WAIT = "wait"
    PUBLISH = "publish"


@dataclass(frozen=True)
class PublishState:
    generation: int
    first_write_ms: int
    due_ms: int

    @property
    def empty(self) -> bool:
        return self.generation <= 0


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    delay_ms: int = 0


def decide(state: PublishState, now_ms: int, *, max_wait_ms: int, flush_busy: bool) -> Decision:
    """Publish now, wait ``delay_ms`` and ask again, or do nothing.

    - nothing written since the last publish: nothing;
    - ``max_wait`` since the first unpublished write reached: publish (a steady stream
      of edits still publishes once per ``max_wait``);
    - quiet period not over: wait until it is (or until ``max_wait``, if sooner);
    - flushes of the business still running: wait a little, then ask again;
    - otherwise: publish.
    """
    if state.empty:
        return Decision(Verdict.NOTHING)
    deadline = state.first_write_ms + max_wait_ms
    if now_ms >= deadline:
        return Decision(Verdict.PUBLISH)
    if now_ms < state.due_ms:
        return Decision(Verdict.WAIT, min(state.due_ms, deadline) - now_ms)
    if flush_busy:
        return Decision(Verdict.WAIT, min(FLUSH_POLL_MS, deadline - now_ms))
    return Decision(Verdict.PUBLISH)
