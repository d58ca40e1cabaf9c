"""Flushing one business: pending ledger rows -> planned klikit calls -> settled targets.

:func:`flush_business_now` holds the business's lease, reads every pending target,
plans the calls, sends them through the shared rate budget and records each
outcome (design.md section 4). It loops until nothing is pending and no nudge
arrived meanwhile. Transient failures and 429s end it with :class:`FlushDeferred`
(a :class:`dramatiq.Retry` carrying the delay); the retry re-plans what is still
pending, so an unchanged write goes again under the same Idempotency-Key.

Visibility rows first go through :func:`workers.visibility.gather_visibility`: the planner
composes each entity's whole channel map from the ledger and klikit's current map, and rows
whose map cannot be known this round wait (the same deferral) rather than being guessed.

The lease is renewed by a heartbeat thread every TTL/3 while the flush runs, and checked
(token compared in Lua) just before every attempt of every write (:class:`WriteFence`): a
flush that lost its lease writes nothing more and hands over to a retry. A flush that finds
the lease taken makes sure one flush message waits for its expiry (:func:`_take_lease`), so
a SIGKILLed holder's business flushes again about one TTL later. On SIGTERM the flush stops
before its next write and releases the lease at once (:data:`workers.shutdown.WORKER_STOPPING`).

A flush holds its worker thread for one slice at most (:mod:`workers.fairness`): a fresh flush
whose round is large, or any flush that has run its slice, stops before its next call and hands
the business over to the backlog lane (``send_backlog``), so that small flushes of other
businesses never wait long for a thread.
"""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog

from config.credentials import CredentialsError
from klikit.errors import (
    ClientUsageError,
    KlikitConnectionError,
    KlikitError,
    KlikitTimeout,
    NotEnvelopeError,
)
from workers import history
from workers.breaker import Breaker
from workers.budget import RateBudget
from workers.clock import now_ms
from workers.credential_block import auth_block_key
from workers.deadletters import build_dead_letter
from workers.errors import FlushDeferred, UnreadablePayload
from workers.fairness import Lane, SlicePolicy, SliceStep, decide_slice
from workers.lease import BusinessLease, LeaseLost
from workers.ledger import PendingRow
from workers.metrics import CHANGE_TO_APPLIED, CHANGES_PER_CALL, KLIKIT_CALLS, RETRIES
from workers.outage import repend_transient_dead_letters
from workers.outcomes import Action, Failures, RetryPolicy, classify, decide_outcome
from workers.planner import PlanContext, PlannedCall, plan_calls
from workers.publish_state import ALL_STORES, PublishTracker
from workers.runtime import Runtime
from workers.set_aside import set_aside
from workers.shutdown import WORKER_STOPPING
from workers.visibility import VisibilityInputs, gather_visibility

log = structlog.get_logger("menusync.flush")

#: The longest a flush sleeps in place for the rate budget before handing back to the broker.
MAX_INLINE_BUDGET_WAIT_MS = 2_000
#: Rounds of one flush at most, so a stream of edits cannot pin a worker thread forever.
MAX_ROUNDS = 50
#: A flush waiting for a taken lease runs this long after the lease would expire unrenewed.
LEASE_WATCH_SLACK_MS = 50


#: Failures after which klikit may still apply the write late (the request may have reached it).
AMBIGUOUS = (KlikitTimeout, KlikitConnectionError, NotEnvelopeError)


@dataclass
class RoundResult:
    progressed: bool = False
    defer_ms: int | None = None
    stop: bool = False
    suspect_delay_ms: int | None = None
    """Set when a write's outcome was unknown: flush again after this delay to repeat it."""
    defer_reason: str = "transient"
    applied_any: bool = False
    yielded: bool = False
    """The flush ran its slice (or its round is too large for the fresh lane): hand over."""


@dataclass
class ThreadSlice:
    """The clock and call count of one flush's hold on its thread (the policy is pure)."""

    policy: SlicePolicy
    lane: Lane
    started: float = field(default_factory=time.monotonic)
    calls_made: int = 0

    def step(self, calls_left: int, wait_ms: int = 0) -> SliceStep:
        elapsed_ms = int((time.monotonic() - self.started) * 1000)
        return decide_slice(
            self.policy,
            self.lane,
            elapsed_ms=elapsed_ms,
            calls_made=self.calls_made,
            calls_left=calls_left,
            wait_ms=wait_ms,
        )


class StoppingMidCall(Exception):
    """The worker is stopping: the in-call retries of the write in hand are given up."""


class WriteFence:
    """Runs just before every attempt of one klikit write: the flush lease must still be ours.

    It raises :class:`LeaseLost` when the lease is gone, and :class:`StoppingMidCall` before an
    in-call retry once the worker is stopping (the first attempt was the call in hand; further
    ones wait for the successor). ``attempts_sent`` counts the attempts that went out, so that
    a write given up between attempts (an earlier one may still land) can be told from one
    given up before anything was sent.
    """

    def __init__(self, lease: BusinessLease) -> None:
        self.lease = lease
        self.attempts_sent = 0

    def __repr__(self) -> str:
        return f"WriteFence({self.lease!r}, attempts_sent={self.attempts_sent})"

    def __call__(self) -> None:
        if self.attempts_sent and WORKER_STOPPING.is_set():
            raise StoppingMidCall(f"worker stopping: in-call retries of business {self.lease.business_id} given up")
        self.lease.ensure_held()
        self.attempts_sent += 1


def read_business_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UnreadablePayload(f"business id must be a positive integer, got {type(value).__name__} {value!r:.40}")
    return value


def flush_business_now(
    rt: Runtime,
    business_id: int,
    send_publish: Callable[[int, int], None],
    send_flush_later: Callable[[int, int], None],
    send_backlog: Callable[[int], None],
    lane: Lane = Lane.FRESH,
) -> None:
    """Flush ``business_id`` if its lease is free.

    ``send_publish(business_id, delay_ms)`` schedules a publish; ``send_flush_later(business_id,
    delay_ms)`` an extra flush (to repeat an ambiguous write once it can no longer land late);
    ``send_backlog(business_id)`` queues the rest of this flush on the backlog lane once the
    flush on ``lane`` yields its thread.
    """
    s = rt.settings
    rt.refresh_credentials()  # a rotated key (file changed, or `menusync credentials clear`) is used at once
    blocked = rt.redis.get(auth_block_key(rt, business_id))
    if blocked:
        log.warning("flush skipped: credential blocked", business_id=business_id, code=blocked)
        rt.redis.delete(rt.keys.flush_scheduled(business_id))
        return
    try:
        rt.credential(business_id)
    except CredentialsError as exc:
        _dead_letter_rows(rt, business_id, rt.ledger.pending(business_id), "credentials_missing", str(exc))
        rt.redis.delete(rt.keys.flush_scheduled(business_id))
        return
    breaker = Breaker(rt.redis, rt.keys, business_id, s.breaker_threshold, s.breaker_open_ms, s.breaker_max_open_ms)
    wait = breaker.remaining_ms()
    if wait:
        _defer(rt, business_id, wait, "breaker_open")
    lease = BusinessLease(rt.redis, rt.keys, business_id, s.lease_ttl_ms)
    if not _take_lease(lease, business_id, send_flush_later):
        return  # the holder sees the dirty flag the nudge set, and flushes again
    rt.redis.delete(lease.dirty_key)
    budget = rt.budget(business_id)
    tracker = PublishTracker(rt.redis, rt.keys, business_id)
    defer: tuple[int, str] | None = None
    dead_letters_checked = False
    slice_ = ThreadSlice(SlicePolicy(s.flush_slice_ms, s.flush_fresh_max_calls), lane)
    try:
        with lease.keep_alive():  # renewed every TTL/3 while this flush runs, however slow klikit is
            for _ in range(MAX_ROUNDS):
                rt.ledger.repend_due_suspects(business_id)
                rows = rt.ledger.pending(business_id)
                result = _flush_round(rt, business_id, rows, lease, budget, breaker, tracker, send_publish, slice_)
                if result.applied_any and not dead_letters_checked:
                    # klikit takes this business's writes: bring back what an outage dead-lettered.
                    dead_letters_checked = True
                    if repend_transient_dead_letters(rt, business_id, send_publish):
                        result.progressed = True
                if result.suspect_delay_ms is not None:
                    send_flush_later(business_id, result.suspect_delay_ms)
                if result.stop:
                    # No flush runs while the credential is blocked: drop the flag, so that the nudge of
                    # `menusync credentials clear` (or of a replay) sends a message at once.
                    rt.redis.delete(rt.keys.flush_scheduled(business_id))
                    return
                if result.defer_ms is not None:
                    defer = (result.defer_ms, result.defer_reason)
                    break
                if result.yielded:
                    break
                if (not rows or not result.progressed) and lease.try_release():
                    return
    except LeaseLost:
        # Another worker may hold the lease now: write nothing more; a retry looks again shortly.
        defer = (s.flush_window_ms, "lease_lost")
    except StoppingMidCall:
        defer = (s.flush_window_ms, "shutdown")
    finally:
        if lease.token is not None:
            lease.release()
    if defer is not None:
        _defer(rt, business_id, *defer)
    # The slice ran out (or MAX_ROUNDS with work left): queue the rest behind the other businesses.
    _hand_over(rt, business_id, send_backlog)


def _take_lease(lease: BusinessLease, business_id: int, send_flush_later: Callable[[int, int], None]) -> bool:
    """Acquire the flush lease; if it is taken, make sure one flush waits for its expiry.

    A live holder keeps renewing its lease and flushes what the nudges added (dirty flag); a
    dead one stops renewing, and the waiting flush takes over as soon as the lease is gone.
    """
    for _ in range(2):
        if lease.acquire():
            return True
        remaining = lease.watch()
        if remaining is None:
            return False  # another flush already waits for this lease
        if remaining > 0:
            send_flush_later(business_id, remaining + LEASE_WATCH_SLACK_MS)
            return False
    return False


def _defer(rt: Runtime, business_id: int, delay_ms: int, reason: str) -> None:
    # Keep the "flush scheduled" flag alive across the delay, so nudges meanwhile don't pile up messages;
    # its value is when the retry is due (the sweeper stops trusting it once that is long past).
    due = now_ms() + delay_ms
    rt.redis.set(rt.keys.flush_scheduled(business_id), due, px=delay_ms + rt.settings.lease_ttl_ms)
    RETRIES.labels(reason=reason).inc()
    log.info("flush deferred", business_id=business_id, delay_ms=delay_ms, reason=reason)
    raise FlushDeferred(f"business {business_id}: {reason}", delay=delay_ms)


def _hand_over(rt: Runtime, business_id: int, send_backlog: Callable[[int], None]) -> None:
    # As a deferral, the "flush scheduled" flag stays set, so nudges meanwhile send no message;
    # if the backlog lane is long and the flag expires, a nudge's extra flush is harmless (lease).
    s = rt.settings
    rt.redis.set(rt.keys.flush_scheduled(business_id), now_ms(), px=s.lease_ttl_ms)
    RETRIES.labels(reason="yield").inc()
    log.debug("flush yields its thread", business_id=business_id)
    send_scheduled_flush(rt, business_id, send_backlog)


def send_scheduled_flush(rt: Runtime, business_id: int, send: Callable[[int], object]) -> None:
    """Send the flush message of ``business_id`` whose ``flush:scheduled`` flag the caller has just
    set. When no message went out, the flag is dropped, so the next nudge (or the sweeper) sends one
    instead of waiting for a flag that no message will clear."""
    try:
        send(business_id)
    except Exception:
        rt.redis.delete(rt.keys.flush_scheduled(business_id))
        raise


def _plan_context(
    rt: Runtime, business_id: int, rows: Sequence[PendingRow], visibility: VisibilityInputs | None = None
) -> PlanContext:
    credential = rt.credential(business_id)
    needs_stores = any(r.target.field == "available_times" and r.target.store is None for r in rows)
    return PlanContext(
        business_id=business_id,
        max_ids=rt.settings.enable_batch_size,
        all_stores=rt.stores(business_id) if needs_stores else (),
        provider_ids=credential.provider_ids,
        visibility_shown=visibility.shown if visibility else {},
        visibility_settled=visibility.settled if visibility else {},
    )


def _flush_round(
    rt: Runtime,
    business_id: int,
    rows: list[PendingRow],
    lease: BusinessLease,
    budget: RateBudget,
    breaker: Breaker,
    tracker: PublishTracker,
    send_publish: Callable[[int, int], None],
    slice_: ThreadSlice,
) -> RoundResult:
    result = RoundResult()
    if not rows:
        return result
    # Visibility maps are composed from klikit's current map: rows whose map can't be known
    # this round wait (or are set aside for good); every other row is planned as usual.
    visibility = gather_visibility(rt, business_id, rows, budget)
    for held in visibility.dead:
        _dead_letter_rows(rt, business_id, held.rows, held.code, held.reason)
        result.progressed = True
    if visibility.auth_error is not None:
        rt.redis.set(auth_block_key(rt, business_id), visibility.auth_error.code)
        log.error("credential refused: flushes of this business stop until an operator clears it")
        result.stop = True
        return result
    if visibility.defer_ms is not None:
        result.defer_ms = visibility.defer_ms
    held_back = visibility.held_back_keys()
    rows = [r for r in rows if r.target.key() not in held_back]
    if not rows:
        return result
    ctx = _plan_context(rt, business_id, rows, visibility)
    calls = deque(plan_calls(rows, ctx))
    by_key = {r.target.key(): r for r in rows}
    covered = {key for call in calls for key, _ in call.targets}
    unplanned = [r for r in rows if r.target.key() not in covered]
    if unplanned:
        _dead_letter_rows(rt, business_id, unplanned, "unplannable", "no klikit call can make these targets true")
        result.progressed = True
    client = rt.client(business_id)
    s = rt.settings
    # A target is applied only once every call carrying it has succeeded (see the planner).
    carriers = Counter(key for call in calls for key, _ in call.targets)
    succeeded: Counter[str] = Counter()
    # During a klikit outage the first call is a single-attempt probe; the rest wait for its answer.
    probing = breaker.outage_since_ms() is not None
    policy = RetryPolicy.from_settings(s)
    while calls:
        if slice_.step(len(calls)) is SliceStep.YIELD:
            result.yielded = True  # the calls not made stay pending: the next slice plans them again
            return result
        call = calls.popleft()
        if WORKER_STOPPING.is_set():
            # The worker is stopping: hand the rest over now (the lease is released at once).
            result.defer_ms, result.defer_reason = s.flush_window_ms, "shutdown"
            return result
        wait = budget.take()
        while wait:
            if wait > MAX_INLINE_BUDGET_WAIT_MS:
                result.defer_ms = wait
                return result
            if slice_.step(len(calls) + 1, wait) is SliceStep.YIELD:
                result.yielded = True  # sleeping for the budget would outlast the slice
                return result
            time.sleep(wait / 1000)
            wait = budget.take()
        slice_.calls_made += 1
        bound = log.bind(
            business_id=business_id,
            operation=call.operation,
            idempotency_key=call.idempotency_key,
            targets=len(call.targets),
        )
        fence = WriteFence(lease)
        try:
            response = client.send(
                call.operation,
                body=call.body,
                path_id=call.path_id,
                idempotency_key=call.idempotency_key,
                before_attempt=fence,
                attempts=1 if probing else None,
            )
        except (LeaseLost, StoppingMidCall):
            if fence.attempts_sent:
                # An earlier attempt failed and may still land late: repeat these targets later.
                due = now_ms() + s.ambiguous_write_settle_ms
                rt.ledger.mark_suspect(business_id, [key for key, _ in call.targets], due)
            raise
        except ClientUsageError as usage:
            # The client refused to send (a planner bug, not klikit's answer): never retried.
            error = KlikitError(str(usage), code="client_usage_error")
            _dead_letter_call(rt, business_id, call, error, 1, now_ms())
            result.progressed = True
            continue
        except KlikitError as error:
            action = classify(error)
            KLIKIT_CALLS.labels(operation=call.operation, outcome=action.value).inc()
            bound = bound.bind(code=error.code, status=error.status, request_id=error.request_id)
            if isinstance(error, AMBIGUOUS):
                # klikit may still apply this write after a newer one: write these targets again later.
                settle = s.ambiguous_write_settle_ms
                rt.ledger.mark_suspect(business_id, [key for key, _ in call.targets], now_ms() + settle)
                result.suspect_delay_ms = settle + 50
            failures = None
            if action is Action.RETRY:
                trip = breaker.failure()
                outage = trip.outage_since_ms is not None
                # While klikit is down for this business nothing ages out: the write's clock restarts.
                attempts, first = rt.failures.record(call.idempotency_key, now_ms(), restart_clock=outage)
                failures = Failures(attempts, first, now_ms(), outage=outage, open_ms=trip.open_ms)
            step = decide_outcome(error, policy, failures, random.random())
            action = step.action
            if action is Action.RATE_LIMITED:
                budget.penalize(step.delay_ms)
                bound.warning("klikit rate limit: backing off", retry_after_ms=step.delay_ms)
                result.defer_ms = step.delay_ms
                return result
            if action is Action.RETRY and failures is not None:
                delay = step.delay_ms
                result.defer_ms = delay if result.defer_ms is None else min(result.defer_ms, delay)
                bound.warning("klikit write failed, will retry", attempts=failures.attempts, delay_ms=delay)
                if failures.outage:
                    # One probe per open window: the other writes wait (coalescing) until klikit answers.
                    result.defer_ms, result.defer_reason = delay, "breaker_open"
                    return result
                continue
            if step.expired and failures is not None:
                _dead_letter_call(rt, business_id, call, error, failures.attempts, failures.first_ms)
                result.progressed = True
                continue
            if action is Action.DEAD_LETTER and error.status in SPLIT_ON_STATUS and len(call.targets) > 1:
                # One bad target must not take the good ones with it: try each half on its own
                # (O(bad x log n) calls), until only the bad targets are dead-lettered.
                halves = split_call(call, by_key, ctx)
                carriers.subtract(key for key, _ in call.targets)
                carriers.update(key for half in halves for key, _ in half.targets)
                calls.extendleft(reversed(halves))
                bound.warning("klikit refused a multi-target write: trying each half", halves=len(halves))
                continue
            _dead_letter_call(rt, business_id, call, error, getattr(error, "attempts", 1) or 1, now_ms())
            result.progressed = True
            if action is Action.AUTH_STOP:
                rt.redis.set(auth_block_key(rt, business_id), error.code)
                bound.error("credential refused: flushes of this business stop until an operator clears it")
                result.stop = True
                return result
            continue
        KLIKIT_CALLS.labels(operation=call.operation, outcome="applied").inc()
        CHANGES_PER_CALL.observe(len(call.targets))
        # Mark the stores for publishing before the targets are applied: a flush that dies in
        # between leaves them pending (written again under the same key, one more publish at
        # worst), never applied with their store left unpublished.
        store_keys = [store.key() for store in call.stores] or [ALL_STORES]
        if tracker.touch(store_keys, s.publish_quiet_ms):
            send_publish(business_id, s.publish_quiet_ms)
        succeeded.update(key for key, _ in call.targets)
        ready = [(key, version) for key, version in call.targets if succeeded[key] == carriers[key]]
        ages = rt.ledger.mark_applied(business_id, ready)
        history.on_applied(rt, business_id, ready, response.request_id, call.idempotency_key)
        for age in ages:
            if age >= 0:
                CHANGE_TO_APPLIED.observe(age / 1000)
        breaker.success()
        probing = False
        result.progressed = result.applied_any = True
        bound.info("klikit write applied", request_id=response.request_id, attempts=response.attempts)
    return result


#: klikit answers that mean "something in this body is wrong": a multi-target write is split to find it.
SPLIT_ON_STATUS = (400, 404)


def split_call(call: PlannedCall, rows_by_key: dict[str, PendingRow], ctx: PlanContext) -> list[PlannedCall]:
    """The calls that make ``call``'s targets true, planned again as two halves of its targets. Pure."""
    keys = [key for key, _ in call.targets]
    middle = len(keys) // 2
    halves: list[PlannedCall] = []
    for part in (keys[:middle], keys[middle:]):
        halves.extend(plan_calls([rows_by_key[k] for k in part if k in rows_by_key], ctx))
    return halves


def _dead_letter_call(
    rt: Runtime, business_id: int, call: PlannedCall, error: KlikitError, attempts: int, first_ms: int
) -> None:
    record = build_dead_letter(
        business_id=business_id,
        error=error,
        targets=call.targets,
        change_ids=call.change_ids,
        operation=call.operation,
        path_id=call.path_id,
        body=call.body,
        idempotency_key=call.idempotency_key,
        attempts=attempts,
        first_failure_ms=first_ms,
    )
    set_aside(rt, record, event="klikit write dead-lettered")


def _dead_letter_rows(rt: Runtime, business_id: int, rows: Sequence[PendingRow], code: str, reason: str) -> None:
    if not rows:
        return
    targets = [(r.target.key(), r.version) for r in rows]
    record = build_dead_letter(
        business_id=business_id, code=code, reason=reason, targets=targets, change_ids=[r.change_id for r in rows]
    )
    set_aside(rt, record)
