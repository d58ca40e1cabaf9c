"""The sweeper: the safety net for a lost nudge or a lost publish message (design.md section 1.5).

:func:`sweep_once` looks only at the businesses that need its attention now, found in three
**attention indexes** (sorted sets, business -> a raw time), one set of three per state shard
(``config.redis.Keys``: each lives in the slot of its businesses' state, so the scripts that change
the state file the business in the same step):

- ``attention:pending``: the oldest pending since. Filed by every script that makes a target
  pending (record, unblock, repend_suspects, repend_drift, ops_store_targets) when the target was
  not pending yet, with ``ZADD LT``: the earliest time wins. Due ``sweep_stale_after_s`` later.
- ``attention:suspect``: the earliest due time of a suspect repeat (``Ledger.mark_suspect``, in the
  same MULTI/EXEC, ``LT``). Due at that time.
- ``attention:publish``: the newest sign of life of a scheduled publish (``publish_touch.lua`` when
  it sets ``scheduled``, ``LT``). Due ``publish_max_wait_ms + PUBLISH_GRACE_MS`` later.

The scores are raw facts, never a setting: the sweeper's settings turn them into due times when it
claims (``attention_claim.lua``: ``ZRANGEBYSCORE`` each index, every claimed entry moved to come due
again after :data:`RECHECK_MS`, so a sweeper dying mid-pass loses nothing). An entry may be early
(the business settled since: the sweeper finds nothing), never late. After looking at a claimed
business, the sweeper re-files it in one script (``attention_refile.lua``) at its real times, read
in the same step as the state, or drops it from an index with nothing to say. A business with
nothing pending and nothing scheduled costs a pass nothing: a pass is one script call plus the
work of the businesses due. The first pass on a Redis without the indexes (``attention:built``
unset: a deploy from before them, a restored dump) files every business once. For each business
claimed it

- **re-nudges a stranded flush**: its oldest pending target is older than
  ``settings.sweep_stale_after_s``, nobody holds its flush lease, its credential is not
  blocked (an auth dead letter stops flushes on purpose) and no flush message is believed
  to be scheduled (the ``flush:scheduled`` flag, whose value is the time its message is
  due: a flag more than ``SCHEDULED_GRACE_MS`` overdue no longer counts, so a message that
  died with a worker hides the business only that long). It then sends a forced
  nudge (``workers.actors.nudge([b], force=True)``). Leaving businesses with a scheduled
  flush alone matters during a klikit outage: forcing past the flag would add one more
  flush message every sweep and defeat the retry backoff.
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
from typing import Any

import structlog

from workers.clock import now_ms
from workers.credential_block import auth_block_key
from workers.flush import LEASE_WATCH_SLACK_MS
from workers.lease import BusinessLease
from workers.publish_state import PublishTracker
from workers.runtime import Runtime, runtime
from workers.scripts import run_scripts, script

log = structlog.get_logger("menusync.sweeper")

#: How much longer than ``publish_max_wait_ms`` a pending publish may go unpublished before a re-send.
PUBLISH_GRACE_MS = 30_000
#: How long past its due time a scheduled flush message may be missing before the sweeper sends another.
SCHEDULED_GRACE_MS = 3_000
#: A claimed business comes due again this long after its claim unless the sweeper re-files it first.
RECHECK_MS = 10_000
#: How many businesses one index hands over per pass (the rest come next pass).
CLAIM_LIMIT = 5_000
#: How often the periodic read-back index is seeded with every business the ledger knows.
RECONCILE_SEED_MS = 60_000


def sweep_once(rt: Runtime | None = None) -> dict[str, int]:
    """One pass over the businesses due. Answers counts: ``businesses`` (claimed), ``stale``, ``nudged``,
    ``skipped_leased``, ``skipped_watched`` (a flush now waits for the lease to expire),
    ``skipped_scheduled``, ``skipped_blocked``, ``publishes_resent``."""
    from workers import actors  # importing the actors builds the broker: only when a sweep runs

    rt = rt or runtime()
    s = rt.settings
    counts = dict.fromkeys(
        (
            "businesses",
            "stale",
            "nudged",
            "skipped_leased",
            "skipped_watched",
            "skipped_scheduled",
            "skipped_blocked",
            "publishes_resent",
            "reconciles_sent",
        ),
        0,
    )
    now = now_ms()
    stale_ms = int(s.sweep_stale_after_s * 1000)
    publish_stale_ms = s.publish_max_wait_ms + PUBLISH_GRACE_MS
    if s.reconcile_interval_s > 0:
        for business_id in due_reconciles(rt, now):
            actors.send_reconcile(business_id, None, "periodic")
            counts["reconciles_sent"] += 1
    if rt.redis.set(rt.keys("attention", "built"), now, nx=True):
        for business_id in rt.ledger.businesses():  # once per Redis: the state from before the indexes
            refile_attention(rt, business_id)
    for business_id in claim_attention(rt, now, stale_ms, publish_stale_ms):
        counts["businesses"] += 1
        _sweep_business(rt, business_id, now, stale_ms, publish_stale_ms, counts)
    return counts


def attention_keys(rt: Runtime, shard: int) -> list[str]:
    """One shard's three attention indexes: pending, suspect, publish."""
    return [rt.keys.attention(kind, shard) for kind in ("pending", "suspect", "publish")]


def claim_attention(rt: Runtime, now: int, stale_ms: int, publish_stale_ms: int) -> list[int]:
    """Businesses that need the sweeper now (each then due again after :data:`RECHECK_MS`).

    One claim script per state shard, all in one pipeline."""
    args = [now, stale_ms, publish_stale_ms, CLAIM_LIMIT, RECHECK_MS]
    replies = run_scripts(rt.redis, "attention_claim", [(attention_keys(rt, s), args) for s in rt.keys.shards()])
    return [int(b) for reply in replies for b in reply]


def refile_attention(rt: Runtime, business_id: int) -> None:
    """File ``business_id`` again at its real times (or drop it), read with the state in one step."""
    keys = [
        rt.ledger.pending_key(business_id),
        rt.keys.business(business_id, "suspect"),
        rt.keys.publish_state(business_id),
        *attention_keys(rt, rt.keys.shard_of(business_id)),
    ]
    script(rt.redis, "attention_refile")(keys=keys, args=[business_id])


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


def _sweep_business(
    rt: Runtime, business_id: int, now: int, stale_ms: int, publish_stale_ms: int, counts: dict[str, int]
) -> None:
    from workers import actors

    try:
        # Repeats of ambiguous writes whose extra flush message was lost become pending here.
        rt.ledger.repend_due_suspects(business_id)
        oldest = rt.ledger.oldest_pending_ms(business_id)
        if oldest is not None and now - oldest >= stale_ms:
            counts["stale"] += 1
            reason = _flush_skip_reason(rt, business_id, now)
            if reason is not None:
                counts[f"skipped_{reason}"] += 1
            elif actors.nudge([business_id], force=True):
                counts["nudged"] += 1
                log.warning(
                    "sweeper re-nudged a stranded business",
                    business_id=business_id,
                    oldest_pending_age_ms=now - oldest,
                    pending=rt.ledger.pending_count(business_id),
                )
        tracker = PublishTracker(rt.redis, rt.keys, business_id)
        raw = tracker.raw()
        scheduled = int(raw.get("scheduled", 0) or 0)
        if not scheduled:
            return
        newest_sign_of_life = max(scheduled, int(raw.get("first", 0) or 0))
        if now - newest_sign_of_life < publish_stale_ms:
            return
        if script(rt.redis, "publish_reschedule")(keys=[tracker.state_key], args=[now]):
            actors.send_publish(business_id, 0)
            counts["publishes_resent"] += 1
            log.warning(
                "sweeper re-sent a stranded publish",
                business_id=business_id,
                pending_for_ms=now - newest_sign_of_life,
            )
    finally:
        refile_attention(rt, business_id)


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


def _flush_skip_reason(rt: Runtime, business_id: int, now: int) -> str | None:
    """Why a stale business must not be nudged now (``None``: nudge it).

    A leased business gets one flush waiting for its lease to expire (``watched``): a live
    holder keeps renewing it, a dead one's work is picked up about one TTL after it died. A
    ``flush:scheduled`` flag counts only until its message is overdue by more than
    :data:`SCHEDULED_GRACE_MS`: a flag whose message died with a worker must not hide the
    business for the flag's whole lifetime.
    """
    from workers import actors

    if rt.redis.get(auth_block_key(rt, business_id)):
        return "blocked"
    lease = BusinessLease(rt.redis, rt.keys, business_id, rt.settings.lease_ttl_ms)
    remaining = lease.watch()
    if remaining:
        actors.send_flush_later(business_id, remaining + LEASE_WATCH_SLACK_MS)
        return "watched"
    if remaining is None:
        return "leased"
    due = rt.redis.get(lease.scheduled_key)
    if due is not None and now <= int(due) + rt.settings.flush_window_ms + SCHEDULED_GRACE_MS:
        return "scheduled"
    return None
