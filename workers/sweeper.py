"""The sweeper: the safety net for a lost nudge or a lost publish message (design.md section 1.5).

:func:`sweep_once` looks only at the businesses that need its attention now, found in three
**attention indexes** (sorted sets, business -> a raw time), one set of three per state shard
(``config.redis.Keys``: each lives in the slot of its businesses' state, so the scripts that change
the state file the business in the same step):

- ``attention:pending``: the oldest pending since. Filed by every script that makes a target
  pending (record, unblock, repend_suspects, repend_drift, ops_store_targets) when the target was
  not pending yet, with ``ZADD LT``: the earliest time wins; ``settle`` drops the business once
  nothing is pending. Due ``sweep_stale_after_s`` later. ``record.lua`` holds the entry back while
  the business's flush flag is trusted (``workers.sweep_decision.attention_hold_ms``).
- ``attention:suspect``: the earliest due time of a suspect repeat (``Ledger.mark_suspect``, in the
  same MULTI/EXEC, ``LT``). Due at that time.
- ``attention:publish``: the newest sign of life of a scheduled publish (``publish_touch.lua`` when
  it sets ``scheduled``, ``LT``). Due ``publish_max_wait_ms + PUBLISH_GRACE_MS`` later.

The scores are raw facts, never a setting: the sweeper's settings turn them into due times when it
claims (``attention_claim.lua``: ``ZRANGEBYSCORE`` each index, every claimed entry moved to come due
again after :data:`RECHECK_MS`, so a sweeper dying mid-pass loses nothing). An entry may be early
(the business settled since: the sweeper finds nothing), never late. A pass then reads every claimed
business in one script each (``sweep_look.lua``), all in one pipeline; decides each with the pure
``workers.sweep_decision.decide_sweep``; acts; and re-files them all (``attention_refile.lua``, one
pipeline) at their real times, read in the same step as the state, or drops them from an index with
nothing to say. A business whose flush the sweeper cannot help before some time (its flush message
is believed queued, its lease is held, it was re-nudged) is re-filed no earlier than that time, so a
pass under a long flush queue does not look at the same waiting businesses every 2 s. A business
with nothing pending and nothing scheduled costs a pass nothing: a pass is one script call plus a
few pipelined round trips for the businesses due. The first pass on a Redis without the indexes
(``attention:built`` unset: a deploy from before them, a restored dump) files every business once.
For each business claimed it

- **re-nudges a stranded flush**: its oldest pending target is older than
  ``settings.sweep_stale_after_s``, nobody holds its flush lease, its credential is not
  blocked (an auth dead letter stops flushes on purpose) and no flush message is believed
  to be scheduled (the ``flush:scheduled`` flag, whose value is the time its message is
  due: a flag more than ``workers.sweep_decision.SCHEDULED_GRACE_MS`` plus the flush queue's current wait overdue no
  longer counts, so a message that died with a worker hides the business only that long, and
  one waiting behind a long queue is not taken for lost: ``workers.queue_wait``), and the sweeper has not re-nudged
  it in the last :data:`RENUDGE_MS` (the ``flush:renudged`` mark). It then sends a forced
  nudge (``workers.actors.nudge_each(..., force=True)``). Leaving businesses with a scheduled
  flush alone matters during a klikit outage: forcing past the flag would add one more
  flush message every sweep and defeat the retry backoff. The re-nudge mark matters under a
  long flush queue: a flag overdue because its message waits behind thousands of others would
  otherwise get one more message every other pass, each making the queue longer.
- **watches a leased one**: when a stale business's lease is held, it makes sure one flush
  message waits for the lease to expire (``BusinessLease.watch``): a live holder renews it
  and that flush finds it taken again; a SIGKILLed holder's business flushes again about one
  lease TTL after the kill.
- **re-sends a stranded publish**: the business's publish state says a publish message is
  pending (``scheduled``) but neither that time nor the start of the current unpublished
  burst (``first``, reset by every publish) is within ``publish_max_wait_ms + 30 s``: a
  healthy publish happens at least once per ``max_wait``. It sends
  ``workers.actors.send_publish(b, 0)`` and moves ``scheduled`` to now, so one stranded
  publish is re-sent at most once per window.

- **sends the periodic read-back** (``settings.reconcile_interval_s``) of every business whose
  turn has come: each business has its own time in a due index, first placed at a hash-spread
  offset within the interval so that businesses do not all read at once, and claimed and moved
  on by one script (``reconcile_claim.lua``).

  The index is seeded with every business at most once per :data:`RECONCILE_SEED_MS` (and at
  once when the interval changed), not every pass: a pass must not cost O(businesses). A new
  business joins the read-back index within a minute, far inside any read-back interval; seeding
  from record.lua instead would need the hash spread and the interval rebuild in Lua, and would
  leave the index empty after an interval change until every business recorded again.

The scheduler process (``python -m producers.scheduler``) calls it every
``settings.sweep_interval_s``. It is idempotent and cheap: one script call when nothing is due.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import structlog

from workers.clock import now_ms
from workers.credential_block import auth_block_key
from workers.flush import LEASE_WATCH_SLACK_MS
from workers.lease import BusinessLease
from workers.queue_wait import QueueWait
from workers.runtime import Runtime, runtime
from workers.scripts import run_scripts, script
from workers.sweep_decision import (
    BusinessLook,
    FlushStep,
    SweepLimits,
    SweepStep,
    decide_sweep,
    flag_grace_ms,
)

log = structlog.get_logger("menusync.sweeper")

#: How much longer than ``publish_max_wait_ms`` a pending publish may go unpublished before a re-send.
PUBLISH_GRACE_MS = 30_000
#: A claimed business comes due again this long after its claim unless the sweeper re-files it first.
RECHECK_MS = 10_000
#: How many businesses one index hands over per pass (the rest come next pass).
CLAIM_LIMIT = 5_000
#: How often the periodic read-back index is seeded with every business the ledger knows.
RECONCILE_SEED_MS = 60_000
#: At most one forced flush message per business per this long, however long its flush queue is.
RENUDGE_MS = 60_000
#: How many businesses one re-filing pipeline carries (the first pass files every business).
REFILE_CHUNK = 1_000
#: How many business ids a rescue's log line names.
LOG_SAMPLE = 5
#: The counts :func:`sweep_once` answers, in order.
SWEEP_COUNTS = (
    "businesses",
    "stale",
    "nudged",
    "skipped_leased",
    "skipped_watched",
    "skipped_scheduled",
    "skipped_blocked",
    "skipped_renudged",
    "publishes_resent",
    "reconciles_sent",
)


def sweep_once(rt: Runtime | None = None) -> dict[str, int]:
    """One pass over the businesses due. Answers counts: ``businesses`` (claimed), ``stale``, ``nudged``,
    ``skipped_leased``, ``skipped_watched`` (a flush now waits for the lease to expire),
    ``skipped_scheduled``, ``skipped_blocked``, ``skipped_renudged`` (re-nudged less than
    :data:`RENUDGE_MS` ago), ``publishes_resent``, ``reconciles_sent``."""
    from workers import actors  # importing the actors builds the broker: only when a sweep runs

    rt = rt or runtime()
    s = rt.settings
    counts = dict.fromkeys(SWEEP_COUNTS, 0)
    now = now_ms()
    limits = sweep_limits(rt)
    if s.reconcile_interval_s > 0:
        for business_id in due_reconciles(rt, now):
            actors.send_reconcile(business_id, None, "periodic")
            counts["reconciles_sent"] += 1
    if rt.redis.set(rt.keys("attention", "built"), now, nx=True):
        refile_attention(rt, rt.ledger.businesses())  # once per Redis: the state from before the indexes
    claimed = claim_attention(rt, now, limits.stale_ms, limits.publish_stale_ms)
    counts["businesses"] = len(claimed)
    if claimed:
        _sweep_claimed(rt, claimed, now, limits, counts)
    return counts


def sweep_limits(rt: Runtime) -> SweepLimits:
    """The sweeper's timings from the settings; a flush flag is trusted for
    ``workers.sweep_decision.flag_grace_ms`` past due (the grace plus the flush queue's current
    wait, ``workers.queue_wait``)."""
    s = rt.settings
    return SweepLimits(
        stale_ms=int(s.sweep_stale_after_s * 1000),
        publish_stale_ms=s.publish_max_wait_ms + PUBLISH_GRACE_MS,
        scheduled_grace_ms=flag_grace_ms(QueueWait(rt.redis, rt.keys).current_ms()),
        flush_window_ms=s.flush_window_ms,
        watch_slack_ms=LEASE_WATCH_SLACK_MS,
        recheck_ms=RECHECK_MS,
        renudge_ms=RENUDGE_MS,
    )


def look_at(rt: Runtime, business_ids: Sequence[int]) -> list[BusinessLook]:
    """What the sweeper decides on, per business: one ``sweep_look.lua`` each, all in one pipeline."""
    calls = []
    for b in business_ids:
        lease = BusinessLease(rt.redis, rt.keys, b, rt.settings.lease_ttl_ms)
        keys = [
            rt.ledger.pending_key(b),
            auth_block_key(rt, b),
            lease.key,
            lease.watch_key,
            lease.scheduled_key,
            rt.keys.flush_renudged(b),
            rt.keys.publish_state(b),
        ]
        calls.append((keys, [rt.settings.lease_ttl_ms]))
    return [BusinessLook.from_reply(reply) for reply in run_scripts(rt.redis, "sweep_look", calls)]


def _sweep_claimed(rt: Runtime, claimed: list[int], now: int, limits: SweepLimits, counts: dict[str, int]) -> None:
    """Look at every claimed business in one round trip, decide each (pure), act, and re-file them all."""
    floors: dict[int, int] = {}
    try:
        # Repeats of ambiguous writes whose extra flush message was lost become pending here.
        run_scripts(rt.redis, "repend_suspects", [rt.ledger.repend_suspects_call(b, now) for b in claimed])
        looks = dict(zip(claimed, look_at(rt, claimed), strict=True))
        steps = {b: decide_sweep(look, now, limits) for b, look in looks.items()}
        steps.update(_watch(rt, _with(steps, FlushStep.WATCH), looks, now, limits))
        stranded = _with(steps, FlushStep.NUDGE)
        renudged = _renudge(rt, stranded, looks, now)
        for b in set(stranded) - set(renudged):
            steps[b] = replace(steps[b], flush_recheck_at_ms=None)  # not sent: look again next pass
        counts["nudged"] = len(renudged)
        counts["publishes_resent"] = _resend_publishes(rt, [b for b, step in steps.items() if step.resend_publish], now)
        for step in steps.values():
            if step.stale:
                counts["stale"] += 1
            if step.flush in _SKIPPED:
                counts[_SKIPPED[step.flush]] += 1
        floors = {
            b: step.flush_recheck_at_ms - limits.stale_ms
            for b, step in steps.items()
            if step.flush_recheck_at_ms is not None
        }
    finally:
        refile_attention(rt, claimed, floors)


def attention_keys(rt: Runtime, shard: int) -> list[str]:
    """One shard's three attention indexes: pending, suspect, publish."""
    return [rt.keys.attention(kind, shard) for kind in ("pending", "suspect", "publish")]


def claim_attention(rt: Runtime, now: int, stale_ms: int, publish_stale_ms: int) -> list[int]:
    """Businesses that need the sweeper now (each then due again after :data:`RECHECK_MS`).

    One claim script per state shard, all in one pipeline."""
    args = [now, stale_ms, publish_stale_ms, CLAIM_LIMIT, RECHECK_MS]
    replies = run_scripts(rt.redis, "attention_claim", [(attention_keys(rt, s), args) for s in rt.keys.shards()])
    return [int(b) for reply in replies for b in reply]


def refile_attention(rt: Runtime, business_ids: Sequence[int], floors: Mapping[int, int] | None = None) -> None:
    """File each business again at its real times (or drop it), read with the state in one step; one
    script per business, all in one pipeline. ``floors`` holds a business's pending entry back to
    that raw score (what the sweeper can do for its flush comes no earlier)."""
    calls = []
    for b in business_ids:
        keys = [
            rt.ledger.pending_key(b),
            rt.keys.business(b, "suspect"),
            rt.keys.publish_state(b),
            *attention_keys(rt, rt.keys.shard_of(b)),
        ]
        floor = (floors or {}).get(b)
        calls.append((keys, [b, "" if floor is None else floor]))
    for chunk in range(0, len(calls), REFILE_CHUNK):
        run_scripts(rt.redis, "attention_refile", calls[chunk : chunk + REFILE_CHUNK])


def _reconcile_keys(rt: Runtime, shard: int) -> tuple[str, str]:
    """A shard's read-back due index and the interval it was built with."""
    return rt.keys.shard(shard, "reconcile", "due"), rt.keys.shard(shard, "reconcile", "interval")


def _shards_to_seed(rt: Runtime) -> list[int]:
    """The shards whose read-back index is due a seeding with every business they know: all of them
    once a minute; otherwise those built with another interval or that know more businesses than
    they index (a new business gets its first read-back one interval after its first change, not
    at the next minute's seeding)."""
    if rt.redis.set(rt.keys("reconcile", "seeded"), 1, nx=True, px=RECONCILE_SEED_MS):
        return list(rt.keys.shards())
    interval = str(int(rt.settings.reconcile_interval_s * 1000))
    calls = []
    for shard in rt.keys.shards():
        due, built_with = _reconcile_keys(rt, shard)
        calls.append(([built_with, rt.keys.businesses(shard), due], [interval]))
    replies = run_scripts(rt.redis, "reconcile_check", calls)
    return [shard for shard, seed in zip(rt.keys.shards(), replies, strict=True) if int(seed)]


def due_reconciles(rt: Runtime, now: int, limit: int = 1_000) -> list[int]:
    """Businesses whose periodic read-back is due now, over every shard (see :func:`claim_due_reconciles`)."""
    seeding = rt.ledger.businesses_by_shard(_shards_to_seed(rt))
    calls = [_reconcile_call(rt, shard, seeding.get(shard, []), now, limit) for shard in rt.keys.shards()]
    return [int(b) for reply in run_scripts(rt.redis, "reconcile_claim", calls) for b in reply]


def _reconcile_call(
    rt: Runtime, shard: int, businesses: list[int], now: int, limit: int
) -> tuple[list[str], list[Any]]:
    interval_ms = int(rt.settings.reconcile_interval_s * 1000)
    args: list[Any] = [now, interval_ms, limit]
    for business_id in businesses:
        args += [business_id, now + zlib.crc32(str(business_id).encode()) % max(1, interval_ms)]
    return list(_reconcile_keys(rt, shard)), args


def claim_due_reconciles(rt: Runtime, shard: int, businesses: list[int], now: int, limit: int = 1_000) -> list[int]:
    """Businesses of one shard whose periodic read-back is due now (each then moves on by one
    interval); ``businesses`` not in the index yet join it at their hash-spread first time."""
    keys, args = _reconcile_call(rt, shard, businesses, now, limit)
    return [int(b) for b in script(rt.redis, "reconcile_claim")(keys=keys, args=args)]


_SKIPPED = {
    FlushStep.WATCH: "skipped_watched",
    FlushStep.LEASED: "skipped_leased",
    FlushStep.SCHEDULED: "skipped_scheduled",
    FlushStep.BLOCKED: "skipped_blocked",
    FlushStep.RENUDGED: "skipped_renudged",
}


def _with(steps: Mapping[int, SweepStep], flush: FlushStep) -> list[int]:
    return [b for b, step in steps.items() if step.flush is flush]


def _watch(
    rt: Runtime, business_ids: list[int], looks: Mapping[int, BusinessLook], now: int, limits: SweepLimits
) -> dict[int, SweepStep]:
    """Become the one watcher of each held lease, and send the flush that waits for its expiry: a live
    holder renews it and that flush finds it taken again; a SIGKILLed holder's business flushes again
    about one lease TTL after the kill. Answers the steps that changed: another watcher came first
    (leased), or the lease is free now (decided again as free)."""
    from workers import actors

    calls = []
    for b in business_ids:
        lease = BusinessLease(rt.redis, rt.keys, b, rt.settings.lease_ttl_ms)
        calls.append(([lease.key, lease.watch_key], [rt.settings.lease_ttl_ms]))
    changed: dict[int, SweepStep] = {}
    for b, remaining in zip(business_ids, run_scripts(rt.redis, "lease_watch", calls), strict=True):
        remaining = int(remaining)
        if remaining in (-1, -2):  # another watcher came first; the lease is free now
            changed[b] = decide_sweep(
                replace(looks[b], watched=True) if remaining == -1 else replace(looks[b], lease_ms=0), now, limits
            )
            continue
        try:
            actors.send_flush_later(b, remaining + LEASE_WATCH_SLACK_MS)
        except Exception:
            log.exception("sweeper could not send a lease watcher's flush", business_id=b)
            changed[b] = replace(decide_sweep(looks[b], now, limits), flush_recheck_at_ms=None)  # next pass
    return changed


def _renudge(rt: Runtime, business_ids: list[int], looks: Mapping[int, BusinessLook], now: int) -> list[int]:
    """Force a flush message for each stranded business and mark it re-nudged for :data:`RENUDGE_MS`
    (no second one meanwhile: under a long queue its first one is late, not lost). One log line per
    pass. Answers the businesses a message went out for."""
    from workers import actors

    if not business_ids:
        return []
    sent, failures = actors.nudge_each(business_ids, force=True)
    pipe = rt.redis.pipeline(transaction=False)  # independent writes, one per business: nothing to agree
    for b in sent:
        pipe.set(rt.keys.flush_renudged(b), now, px=RENUDGE_MS)
    pipe.execute()
    if sent:
        oldest = min(looks[b].oldest_pending_ms or now for b in sent)
        log.warning(
            "sweeper re-nudged stranded businesses",
            businesses=len(sent),
            sample=sent[:LOG_SAMPLE],
            oldest_pending_age_ms=now - oldest,
        )
    for b, exc in failures.items():
        log.warning("sweeper could not re-nudge a business", business_id=b, error=type(exc).__name__)
    return sent


def _resend_publishes(rt: Runtime, business_ids: list[int], now: int) -> int:
    """Re-send each stranded publish whose state still says one is pending (``publish_reschedule.lua``
    moves its ``scheduled`` to now, so one is re-sent at most once per window). Answers how many went."""
    from workers import actors

    calls = [([rt.keys.publish_state(b)], [now]) for b in business_ids]
    resent: list[int] = []
    for b, moved in zip(business_ids, run_scripts(rt.redis, "publish_reschedule", calls), strict=True):
        if not int(moved):
            continue
        try:
            actors.send_publish(b, 0)
        except Exception:
            log.exception("sweeper could not re-send a publish", business_id=b)
        else:
            resent.append(b)
    if resent:
        log.warning("sweeper re-sent stranded publishes", businesses=len(resent), sample=resent[:LOG_SAMPLE])
    return len(resent)
