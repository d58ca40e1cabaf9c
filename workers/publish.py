"""Publishing one business's menu, debounced (design.md section 5).

:func:`publish_business_now` asks the pure :func:`workers.debounce.decide` what to
do with the business's debounce state: wait and ask again, do nothing, or send one
``publishMenu`` for the stores touched since the last publish. The state is cleared
only if no write landed during the call (compare-and-set on the generation), so an
edit during a publish always leads to one more publish.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import structlog

from config.credentials import CredentialsError
from klikit.errors import KlikitError
from klikit.models import PublishRequest, ZoneStore
from workers import history
from workers.breaker import Breaker
from workers.changes import Store
from workers.clock import now_ms
from workers.credential_block import auth_block_key
from workers.deadletters import build_dead_letter
from workers.debounce import FLUSH_POLL_MS, Verdict, decide
from workers.errors import FlushDeferred
from workers.idempotency import idempotency_key
from workers.lease import BusinessLease, Lease
from workers.metrics import DEAD_LETTERS, KLIKIT_CALLS, PUBLISHES, RETRIES, WRITE_TO_PUBLISH
from workers.outcomes import Action, Failures, RetryPolicy, classify, decide_outcome
from workers.publish_state import ALL_STORES, PublishTracker
from workers.runtime import Runtime

log = structlog.get_logger("menusync.publish")

PUBLISH_OPERATION = "publish_menu"


def publish_request(stores: list[Store], provider_ids: tuple[int, ...]) -> PublishRequest:
    """The publishMenu request for ``stores``: each store once, in key order, and the providers sorted."""
    ordered = sorted(set(stores), key=lambda s: s.key())
    return PublishRequest(
        stores=[ZoneStore(brand_id=s.brand_id, branch_id=s.branch_id) for s in ordered],
        provider_ids=sorted(set(provider_ids)),
    )


def publish_business_now(
    rt: Runtime,
    business_id: int,
    send_publish: Callable[[int, int], None],
    send_reconcile: Callable[[int, list[str], str, int], None] | None = None,
) -> None:
    """Run one publish decision for ``business_id``; ``send_publish(business_id, delay_ms)`` re-schedules.

    After a publish that no write overtook, ``send_reconcile(business_id, store_keys, reason,
    delay_ms)`` asks for the read-back of the stores published (when enabled in the settings).
    """
    s = rt.settings
    rt.refresh_credentials()
    tracker = PublishTracker(rt.redis, rt.keys, business_id)
    state = tracker.state()
    lease = BusinessLease(rt.redis, rt.keys, business_id, s.lease_ttl_ms)
    flush_busy = rt.ledger.pending_count(business_id) > 0 or lease.held_by_anyone()
    if rt.redis.get(auth_block_key(rt, business_id)):
        flush_busy = False  # a blocked credential will not flush; publish what was written
    decision = decide(state, now_ms(), max_wait_ms=s.publish_max_wait_ms, flush_busy=flush_busy)
    if decision.verdict is Verdict.NOTHING:
        tracker.drop()
        return
    if decision.verdict is Verdict.WAIT:
        send_publish(business_id, decision.delay_ms)
        return
    try:
        credential = rt.credential(business_id)
    except CredentialsError as exc:
        _dead_letter(rt, business_id, tracker, state.generation, None, "credentials_missing", str(exc))
        return
    touched = tracker.stores()
    stores = (
        list(rt.stores(business_id))
        if ALL_STORES in touched
        else [Store.from_key(k) for k in touched if k != ALL_STORES]
    )
    if not stores:
        tracker.drop(state.generation)
        return
    body = publish_request(stores, credential.provider_ids).wire()
    key = idempotency_key(business_id, PUBLISH_OPERATION, body, f"gen-{state.generation}")
    budget = rt.budget(business_id)
    breaker = Breaker(rt.redis, rt.keys, business_id, s.breaker_threshold, s.breaker_open_ms, s.breaker_max_open_ms)
    wait = breaker.remaining_ms() or budget.take()  # klikit down for this business: wait with its flushes
    if wait:
        send_publish(business_id, wait)
        return
    bound = log.bind(business_id=business_id, generation=state.generation, idempotency_key=key, stores=len(stores))
    last_write = int(tracker.raw().get("last_write", 0) or 0)
    # At most one publish per business in flight, even if the sweeper re-sent the message.
    # The guard is a lease with a heartbeat: held however long klikit takes, gone within a TTL if we die.
    guard_key = rt.keys.business(business_id, "publish", "in_flight")
    in_flight = Lease(rt.redis, guard_key, s.lease_ttl_ms, kind="publish", business_id=business_id)
    if not in_flight.acquire():
        send_publish(business_id, FLUSH_POLL_MS)
        return
    try:
        with in_flight.keep_alive():
            response = rt.client(business_id).send(PUBLISH_OPERATION, body=body, idempotency_key=key)
    except KlikitError as error:
        action = classify(error)
        KLIKIT_CALLS.labels(operation=PUBLISH_OPERATION, outcome=action.value).inc()
        PUBLISHES.labels(outcome=action.value).inc()
        bound = bound.bind(code=error.code, status=error.status, request_id=error.request_id)
        failures = None
        if action is Action.RETRY:
            # During a klikit outage of this business nothing ages out, and retries come at its probe pace.
            outage = breaker.outage_since_ms() is not None
            attempts, first = rt.failures.record(key, now_ms(), restart_clock=outage)
            failures = Failures(attempts, first, now_ms(), outage=outage)
        step = decide_outcome(error, RetryPolicy.from_settings(s), failures, random.random())
        if step.action is Action.RATE_LIMITED:
            budget.penalize(step.delay_ms)
            RETRIES.labels(reason="publish_rate_limited").inc()
            raise FlushDeferred(f"publish of {business_id} rate limited", delay=step.delay_ms) from None
        if step.action is Action.RETRY and failures is not None:
            RETRIES.labels(reason="publish_transient").inc()
            bound.warning("publish failed, will retry", attempts=failures.attempts, delay_ms=step.delay_ms)
            raise FlushDeferred(f"publish of {business_id} failed transiently", delay=step.delay_ms) from None
        _dead_letter(rt, business_id, tracker, state.generation, key, error.code, error.message, body, error)
        if action is Action.AUTH_STOP:
            rt.redis.set(auth_block_key(rt, business_id), error.code)
        return
    finally:
        in_flight.release()
    KLIKIT_CALLS.labels(operation=PUBLISH_OPERATION, outcome="applied").inc()
    PUBLISHES.labels(outcome="applied").inc()
    rt.failures.clear(key)
    if last_write:
        WRITE_TO_PUBLISH.observe(max(0, now_ms() - last_write) / 1000)
    rt.redis.hset(
        rt.keys.publish_last(business_id),
        mapping={
            "at_ms": now_ms(),
            "generation": state.generation,
            "request_id": response.request_id or "",
            "outcome": "published",
        },
    )
    bound.info("menu published", request_id=response.request_id)
    history.on_publish(rt, business_id, [s.key() for s in stores], response.request_id, key, "published")
    if not tracker.complete(state.generation):
        # A write landed during the call: publish once more after its quiet period (its read-back follows it).
        again = tracker.state()
        send_publish(business_id, max(0, again.due_ms - now_ms()))
    elif send_reconcile is not None and s.reconcile_after_publish:
        send_reconcile(business_id, [store.key() for store in stores], "publish", s.reconcile_delay_ms)


def _dead_letter(
    rt: Runtime,
    business_id: int,
    tracker: PublishTracker,
    generation: int,
    key: str | None,
    code: str,
    reason: str,
    body: object = None,
    error: KlikitError | None = None,
) -> None:
    record = rt.dead_letters.add(
        build_dead_letter(
            business_id=business_id,
            error=error,
            code=code,
            reason=reason,
            operation=PUBLISH_OPERATION,
            body=body,
            idempotency_key=key,
        )
    )
    if key:
        rt.failures.clear(key)
    tracker.drop(generation)
    rt.redis.hset(
        rt.keys.publish_last(business_id),
        mapping={"at_ms": now_ms(), "generation": generation, "request_id": record.request_id or "", "outcome": code},
    )
    DEAD_LETTERS.labels(code=code).inc()
    history.on_publish(rt, business_id, [], record.request_id, key or "", code)
    log.error("publish dead-lettered", business_id=business_id, dead_letter_id=record.id, code=code)
