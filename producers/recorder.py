"""The receiver's record path on the event loop (``/v1/changes`` and signed Standard Webhooks).

:meth:`Recorder.accept` does what ``producers.intake.accept`` does (record in the ledger, nudge
the flush, store the timed re-enables) without a worker thread, and records concurrent requests
together (:mod:`producers.group_commit`):

- A request's changes (one business) join the open window of ``(business, source, actor)``:
  source and actor are arguments of the whole ``record.lua`` call (they go into the history), so
  requests that differ in them ride separate calls. The window lasts ``MENUSYNC_RECORD_GROUP_MS``.
- A window's calls, each built by ``workers.ledger.record_call`` (the one owner of the script's
  keys and arguments, shared with ``Ledger.record``) and read back by ``read_record_reply``, go
  pipelined in ONE round trip (``workers.scripts.run_async``), followed on the same connection
  by ``WAIT`` when ``MENUSYNC_REDIS_MIN_REPLICAS_ACK`` is set. Each request gets its own outcomes;
  a call that failed fails only its requests.
- A call that answered "send" gets its flush message (``workers.actors.send_flush``, on a worker
  thread: the broker client blocks; one per business per flush, not per request).
- Fewer replicas than wanted fail every request of the window with ``ReplicasBehind`` (503):
  after the nudges, so a record the replicas did not confirm is still flushed from this master.
- The timers of the winners are stored after the record, as in ``intake.accept``.
- The history's receive time of a change is when its window closed (at most the window after the
  request arrived).

A signed webhook's duplicate mark rides its record call (``accept(..., delivery=...)``:
``record.lua`` checks and sets it in the same step). Deliveries of one ``(business, source,
actor)`` share calls too, each with its own mark and changes (a call holds whole deliveries, at
most :data:`RECORD_CHUNK` changes); two copies of one delivery in a call are told apart, and the
second answers "delivered". The claims and done
marks of larger webhooks (``producers.dedupe``) are grouped per event-loop tick: one pipelined
round trip for all requests that claim at once.

Settings, keys and the flush sender are the process runtime's (``workers.runtime.runtime()``), as
for ``workers.submit.submit_changes``. The Redis client is asyncio's and belongs to one event
loop: a Recorder used from another loop (a test client's) opens a client for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis
import redis.asyncio
from starlette.concurrency import run_in_threadpool

from producers.dedupe import Claim, claim_outcome, queue_claim, queue_done
from producers.group_commit import GroupCommit
from producers.intake import timers_due
from producers.metrics import RECORD_CALLS, RECORD_REQUESTS
from producers.timers import Timers
from workers.changes import Change
from workers.clock import now_ms
from workers.ledger import RECORD_CHUNK, read_record_reply, record_call
from workers.metrics import CHANGES_RECORDED, CHANGES_SUPERSEDED
from workers.queue_wait import QueueWait, RecentWait, flag_ttl_ms
from workers.runtime import runtime
from workers.scripts import run_async
from workers.submit import RecordOutcome, ReplicasBehind, SubmitResult

#: Claims (and done marks) pipelined in one round trip at most.
CLAIMS_PER_CALL = 1000

RecordKey = tuple[int, str, str, bool]  # business, source, actor, whether its requests are deliveries


@dataclass(frozen=True, slots=True)
class MarkedChange:
    """A change of a webhook delivery: its mark key, and the request's serial (two copies of one
    delivery in one call are two deliveries of the same mark: the second is told "delivered")."""

    change: Change
    mark: str
    serial: int


Unit = Change | MarkedChange


@dataclass
class _Bound:
    """What belongs to one event loop: the asyncio client and the groups whose futures live there."""

    loop: asyncio.AbstractEventLoop
    client: redis.asyncio.Redis
    records: GroupCommit[RecordKey, Unit, RecordOutcome]
    claims: GroupCommit[str, str, Claim]
    dones: GroupCommit[int, str, None]


class Recorder:
    """Records changes from the event loop, grouped per window (module doc)."""

    def __init__(self, connect: Callable[[], redis.asyncio.Redis], *, window_ms: float, dedupe_ttl_s: int) -> None:
        self._connect = connect
        self.window_s = max(0.0, window_ms) / 1000
        self.dedupe_ttl_s = dedupe_ttl_s
        self._bound: _Bound | None = None
        self._deliveries = itertools.count(1)
        self._wait = RecentWait()

    def __repr__(self) -> str:
        return f"Recorder(window_s={self.window_s})"

    def _state(self) -> _Bound:
        loop = asyncio.get_running_loop()
        bound = self._bound
        if bound is None or bound.loop is not loop:
            bound = _Bound(
                loop=loop,
                client=self._connect(),
                records=GroupCommit(self._record_calls, window_s=self.window_s, cap=RECORD_CHUNK),
                claims=GroupCommit(self._claim_calls, window_s=0, cap=CLAIMS_PER_CALL),
                dones=GroupCommit(self._done_calls, window_s=0, cap=CLAIMS_PER_CALL),
            )
            self._bound = bound
        return bound

    @property
    def client(self) -> redis.asyncio.Redis:
        """The asyncio client of the running event loop."""
        return self._state().client

    async def aclose(self) -> None:
        bound, self._bound = self._bound, None
        if bound is not None and bound.loop is asyncio.get_running_loop():
            await bound.client.aclose()

    # -- recording ------------------------------------------------------------------------------

    async def accept(
        self, changes: Sequence[Change], *, source: str, actor: str = "", delivery: str = ""
    ) -> SubmitResult:
        """Record ``changes`` (all of one business); schedule the timed re-enables of the winners.

        ``delivery`` (a mark key of the business, ``producers.dedupe.delivery_key``; at most
        :data:`RECORD_CHUNK` changes) records them only if that delivery was not recorded before,
        and marks it in the same script call: every outcome then says ``delivered`` when it was."""
        if not changes:
            return SubmitResult(accepted=0, superseded=0, outcomes=[])
        businesses = {c.target.business_id for c in changes}
        if len(businesses) != 1:
            raise ValueError("one request records changes of one business")
        if delivery and len(changes) > RECORD_CHUNK:
            raise ValueError(f"a delivery mark covers one script call: at most {RECORD_CHUNK} changes")
        state = self._state()
        RECORD_REQUESTS.inc()
        units: Sequence[Unit] = changes
        if delivery:
            serial = next(self._deliveries)
            units = [MarkedChange(c, delivery, serial) for c in changes]
        outcomes = await state.records.submit((businesses.pop(), source, actor, bool(delivery)), units)
        accepted = sum(o.won for o in outcomes)
        duplicate = sum(o.duplicate for o in outcomes)
        due = timers_due(changes, outcomes)
        if due:
            rt = runtime()
            pipe = state.client.pipeline(transaction=True)
            Timers(rt.redis, rt.keys).queue_schedule(pipe, due)
            await pipe.execute()
        return SubmitResult(
            accepted=accepted, superseded=len(outcomes) - accepted - duplicate, outcomes=outcomes, duplicate=duplicate
        )

    async def _record_calls(
        self, calls: list[tuple[RecordKey, list[Unit]]]
    ) -> list[list[RecordOutcome] | BaseException]:
        rt = runtime()
        s, keys = rt.settings, rt.keys
        now = now_ms()
        client = self._state().client
        if self._wait.due(now):  # at most once a second: one more round trip for this window
            with contextlib.suppress(redis.RedisError, OSError):  # the record's own call fails on it
                self._wait.store(await QueueWait(client, keys).current_ms_async(), now)
        flag_ttl = flag_ttl_ms(s.lease_ttl_ms, self._wait.value_ms)
        hold = rt.attention_hold_ms(self._wait.value_ms)
        built = []
        for (business_id, source, actor, _), units in calls:
            changes, deliveries = _split_units(units)
            built.append(
                record_call(
                    keys,
                    business_id,
                    changes,
                    now=now,
                    flag_ttl_ms=flag_ttl,
                    history_max=s.history_max_per_business,
                    source=source,
                    actor=actor,
                    received_ms=now,
                    deliveries=deliveries,
                    delivery_ttl_s=self.dedupe_ttl_s,
                    attention_hold_ms=hold,
                )
            )
        min_acks = s.redis_min_replicas_ack
        wait = (min_acks, s.redis_ack_timeout_ms) if min_acks else None
        replies, acked = await run_async(client, "record", built, wait=wait)
        RECORD_CALLS.inc(len(calls))
        answers: list[list[RecordOutcome] | BaseException] = []
        to_send: list[int] = []
        for ((_, source, _, _), _units), reply in zip(calls, replies, strict=True):
            if isinstance(reply, BaseException):
                answers.append(reply)
                continue
            got = read_record_reply(reply)
            outcomes = [
                RecordOutcome(won=v is not None, version=v, duplicate=same, delivered=delivered)
                for v, same, delivered in zip(got.versions, got.duplicate, got.delivered, strict=True)
            ]
            won = sum(o.won for o in outcomes)
            lost = len(outcomes) - won - sum(o.duplicate for o in outcomes)
            if won:
                CHANGES_RECORDED.labels(source=source).inc(won)
            if lost:
                CHANGES_SUPERSEDED.labels(source=source).inc(lost)
            if got.send:
                to_send.append(len(answers))
            answers.append(outcomes)
        for i in to_send:
            business_id = calls[i][0][0]
            try:
                await run_in_threadpool(_send_flush, business_id)
            except Exception as exc:  # the flag was dropped: the next nudge or the sweeper sends one
                answers[i] = exc
        if wait is not None and acked is not None and acked < wait[0]:
            behind = ReplicasBehind(wait[0], acked)
            answers = [behind if not isinstance(a, BaseException) else a for a in answers]
        return answers

    # -- webhook duplicate claims -----------------------------------------------------------------

    async def claim(self, key: str) -> Claim:
        """Claim a webhook's dedupe key (``producers.dedupe``), grouped with the claims of this tick."""
        (outcome,) = await self._state().claims.submit("claim", [key])
        return outcome

    async def done(self, key: str) -> None:
        """Mark a claimed event recorded, grouped with the other done marks of this tick."""
        await self._state().dones.submit(0, [key])

    async def release(self, key: str) -> None:
        """Drop a claim whose record failed, so that the sender's retry goes through at once."""
        await self._state().client.delete(key)

    async def _claim_calls(self, calls: list[tuple[str, list[str]]]) -> list[list[Claim] | BaseException]:
        pipe = self._state().client.pipeline(transaction=False)
        for _, keys in calls:
            for key in keys:
                queue_claim(pipe, key)
        replies = await pipe.execute()
        answers: list[list[Claim] | BaseException] = []
        at = 0
        for _, keys in calls:
            pairs = replies[at : at + 2 * len(keys)]
            answers.append([claim_outcome(a, b) for a, b in zip(pairs[0::2], pairs[1::2], strict=True)])
            at += 2 * len(keys)
        return answers

    async def _done_calls(self, calls: list[tuple[int, list[str]]]) -> list[list[None] | BaseException]:
        pipe = self._state().client.pipeline(transaction=False)
        for _, keys in calls:
            for key in keys:
                queue_done(pipe, key, self.dedupe_ttl_s)
        await pipe.execute()
        return [[None] * len(keys) for _, keys in calls]


def _split_units(units: Sequence[Unit]) -> tuple[list[Change], list[tuple[str, int]]]:
    """A call's changes, and its deliveries as (mark key, number of changes) in order: one run of
    changes per request (mark and serial), so two copies of one delivery stay two."""
    changes: list[Change] = []
    deliveries: list[tuple[str, int]] = []
    last: tuple[str, int] | None = None
    for unit in units:
        if isinstance(unit, Change):
            changes.append(unit)
            continue
        changes.append(unit.change)
        if last == (unit.mark, unit.serial):
            deliveries[-1] = (unit.mark, deliveries[-1][1] + 1)
        else:
            deliveries.append((unit.mark, 1))
            last = (unit.mark, unit.serial)
    return changes, deliveries


def _send_flush(business_id: int) -> None:
    from workers.actors import send_flush  # imported on use: importing the actors builds the broker

    send_flush(business_id)
