"""Replay and drop of dead letters: the rules the command line and the console both apply.

:func:`replay` puts a record's work back into the pipeline (see ``cli/dead_letters.py`` for the
rules by kind of record) and marks it replayed; a ``state_idempotency_conflict`` is refused
without ``new_key``. :func:`drop` forgets a record. Both append to the business's change history
naming who did it (``actor``) and from where (``source``: ``cli`` or ``console``).
:func:`select` finds the open records matching a filter, for bulk actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workers import history
from workers.clock import now_ms
from workers.credential_block import auth_block_key
from workers.deadletters import DeadLetter
from workers.publish import PUBLISH_OPERATION
from workers.runtime import Runtime

CONFLICT = "state_idempotency_conflict"
REPLAYED_KEEP_S = 7 * 24 * 3600


def needs_new_key(code: str) -> bool:
    """Whether a record of ``code`` can only be replayed under a new Idempotency-Key."""
    return code == CONFLICT


@dataclass
class ActionResult:
    ok: bool
    status: str
    """``replayed``, ``dropped``, ``needs_new_key``, ``not_open``, ``no_business``, ``raced``."""
    message: str
    warnings: list[str] = field(default_factory=list)
    pending_again: int = 0


def replay(rt: Runtime, record: DeadLetter, *, new_key: bool, actor: str = "", source: str = "cli") -> ActionResult:
    """Put a dead letter's work back into the pipeline, then mark it replayed."""
    from workers import actors

    if record.replayed_at_ms:
        return ActionResult(False, "not_open", f"{record.id} was already replayed; nothing to do")
    b = record.business_id
    if needs_new_key(record.error_code) and not new_key:
        return ActionResult(
            False,
            "needs_new_key",
            f"{record.id} is a {CONFLICT}: klikit holds a different request under key "
            f"{record.idempotency_key}. Replaying it under the same key would fail again; replay with a new key "
            "(--new-key).",
        )
    if b is None:
        return ActionResult(False, "no_business", f"{record.id} names no business: nothing to replay; drop it")
    back = 0
    if record.targets:
        back = rt.ledger.unblock(b, [(t, v) for t, v in record.targets], new_key=new_key)
        actors.nudge([b])
        superseded = len(record.targets) - back
        message = (
            f"replayed {record.id}: {back} target(s) pending again"
            + (" under a new idempotency key" if new_key else "")
            + (f", {superseded} already superseded by newer changes" if superseded else "")
            + f"; flush of business {b} nudged"
        )
    elif record.operation == PUBLISH_OPERATION or record.actor == "publish_business":
        _replay_publish(rt, record, b)
        message = f"replayed {record.id}: publish of business {b} scheduled (new generation)"
    else:
        actors.nudge([b])
        message = f"replayed {record.id}: flush of business {b} nudged"
    result = ActionResult(True, "replayed", message, pending_again=back)
    if rt.redis.get(auth_block_key(rt, b)):
        result.warnings.append(
            f"business {b}'s credential is still blocked: flushes stay stopped until `menusync credentials clear {b}`"
        )
    if not rt.dead_letters.mark_replayed(record, now_ms(), REPLAYED_KEEP_S):
        result.warnings.append(f"{record.id} was replayed or dropped meanwhile by someone else")
        result.status = "raced"
    _note(rt, record, "replayed", actor, source, "new key" if new_key else "same key")
    return result


def _replay_publish(rt: Runtime, record: DeadLetter, business_id: int) -> None:
    from workers import actors
    from workers.publish_state import ALL_STORES, PublishTracker

    body = record.body if isinstance(record.body, dict) else {}
    stores = [f"{s['brandID']}:{s['branchID']}" for s in body.get("stores", []) if isinstance(s, dict)]
    tracker = PublishTracker(rt.redis, rt.keys, business_id)
    if tracker.touch(stores or [ALL_STORES], rt.settings.publish_quiet_ms):
        actors.send_publish(business_id, 0)


def drop(rt: Runtime, record: DeadLetter, *, actor: str = "", source: str = "cli") -> ActionResult:
    """Forget an open dead letter; its targets stay as klikit has them until a newer change arrives."""
    if not rt.dead_letters.drop(record.id):
        return ActionResult(False, "not_open", f"{record.id} was replayed or dropped meanwhile")
    _note(rt, record, "dropped", actor, source, "")
    return ActionResult(True, "dropped", f"dropped {record.id} ({record.error_code}, {len(record.targets)} target(s))")


def _note(rt: Runtime, record: DeadLetter, outcome: str, actor: str, source: str, extra: str) -> None:
    if record.business_id is None:
        return
    targets = list(record.targets) or [(record.operation or record.kind, "")]
    detail = f"{record.error_code} {record.id}" + (f" ({extra})" if extra else "")
    history.append_outcomes(
        rt.redis,
        rt.keys,
        record.business_id,
        targets,
        outcome,
        max_entries=rt.settings.history_max_per_business,
        source=source,
        actor=actor,
        detail=detail,
    )


def select(
    rt: Runtime,
    *,
    business_id: int | None = None,
    code: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int = 10_000,
) -> list[DeadLetter]:
    """Open dead letters matching every filter given (last failure within [since, until]), newest first."""
    records = rt.dead_letters.list(business_id, limit=limit)
    return [
        r
        for r in records
        if (code is None or r.error_code == code)
        and (since_ms is None or r.last_failure_ms >= since_ms)
        and (until_ms is None or r.last_failure_ms <= until_ms)
    ]
