"""The one way every producer records changes.

:func:`accept` records the changes in the desired-state ledger (``workers.submit.submit_changes``:
one atomic Lua call, older versions dropped as superseded, flush actors nudged) and, for each
change that won and carries ``until_ms`` with ``enabled = false``, stores the timed re-enable
with the version the change got (:mod:`producers.timers`). A re-enable for a change that enables
would be a no-op and is not stored.

The timer is stored right after the record call returns; a process killed between the two loses
that one timer (the change itself is recorded). The window is one Redis round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from producers.runtime import context
from producers.timers import Timers
from workers.changes import Change

if TYPE_CHECKING:
    from workers.submit import RecordOutcome, SubmitResult


def _submit(changes: Sequence[Change], producer: str, actor: str = "") -> SubmitResult:
    from workers.submit import submit_changes

    return submit_changes(changes, source=producer, actor=actor)


def timers_due(changes: Sequence[Change], outcomes: Sequence[RecordOutcome]) -> list[tuple[Change, str]]:
    """The (change, version) pairs that get a timed re-enable: won, disabling, with ``until_ms``."""
    return [
        (change, outcome.version)
        for change, outcome in zip(changes, outcomes, strict=True)
        if outcome.won and outcome.version and change.until_ms is not None and change.value is False
    ]


def accept(
    changes: Sequence[Change], *, timers: Timers | None = None, producer: str = "api", actor: str = ""
) -> SubmitResult:
    """Record ``changes``; schedule the timed re-enables of the winners. Answers the submit result.

    ``actor`` (an API token's or webhook secret's name, an operator) is kept in the change history."""
    from workers.submit import SubmitResult

    if not changes:
        return SubmitResult(accepted=0, superseded=0, outcomes=[])
    result = _submit(changes, producer, actor)
    due = timers_due(changes, result.outcomes)
    if due:
        if timers is None:
            timers = Timers(*context())
        timers.schedule(due)
    return result
