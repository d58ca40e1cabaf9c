"""The desired-state ledger: per target, the newest desired value and the version applied.

Layout, per business ``B`` under the key prefix and the hash tag of its state shard
(``config.redis.Keys.business``: ``<prefix>:{S}:desired:B``)::

    desired:B   hash target -> value JSON         dver:B   hash target -> desired version
    cid:B       hash target -> change id          aver:B   hash target -> applied version
    pending:B   zset target -> ms it became due   dead:B   hash target -> dead-letter id
    nonce:B     hash target -> replay nonce       stats:B  hash recorded/superseded/applied/dead
    suspect:B   zset target -> ms after which an ambiguous write of it is repeated
    drift:B     hash target -> "version|repairs|last ms": recent drift repairs at that version
    history:B   stream of who changed what, when (``workers.history``), appended by the record script

Every state change is one Lua script, so that concurrent producers and flushes
never interleave a read and a write.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis

from config.redis import Keys
from workers.changes import Change, Target
from workers.clock import now_ms
from workers.scripts import script


@dataclass(frozen=True)
class PendingRow:
    """One target whose desired version is newer than the applied one."""

    target: Target
    value: Any
    version: str
    change_id: str
    nonce: int = 0
    pending_since_ms: int = 0


@dataclass(frozen=True)
class TargetState:
    """One target as the ledger holds it at one moment (see :meth:`Ledger.view`)."""

    value: Any
    version: str
    applied_version: str | None
    pending: bool
    dead: bool

    @property
    def settled(self) -> bool:
        """Applied at its desired version, nothing newer waiting, not set aside."""
        return self.applied_version == self.version and not self.pending and not self.dead


@dataclass(frozen=True)
class DriftRepair:
    """What :meth:`Ledger.repend_drift` did: targets re-pended, targets past the repair cap."""

    busy: bool = False
    stale: bool = False
    """A write landed and was published while the menus were read: the reading may predate it."""
    repended: tuple[str, ...] = ()
    persistent: tuple[str, ...] = ()
    send_flush: bool = False


#: Most targets one call of the record script takes: with the change history, about 12-15 ms of
#: Redis time per call (measured about 24-28 ms for 1,000), so one request never holds Redis for long.
RECORD_CHUNK = 500


def record_call(
    k: Keys,
    business_id: int,
    changes: Sequence[Change],
    expect_versions: Sequence[str | None] | None = None,
    *,
    now: int,
    flag_ttl_ms: int,
    history_max: int,
    source: str,
    actor: str,
    received_ms: int,
    deliveries: Sequence[tuple[str, int]] = (),
    delivery_ttl_s: int = 0,
    attention_hold_ms: int = 0,
) -> tuple[list[bytes], list[bytes]]:
    """The keys and arguments of one ``record.lua`` call for ``changes``, all of ``business_id``
    (at most :data:`RECORD_CHUNK`). The one place that knows the script's calling convention:
    :meth:`Ledger.record` and the receiver's group commit (``producers.recorder``) both call it.
    ``deliveries``: webhook deliveries as (mark key, number of changes), in order, together every
    change; each is recorded only if its mark was not set before (nor by an earlier copy in the
    call), and marked for ``delivery_ttl_s``. ``attention_hold_ms`` holds a business that becomes
    pending back in the sweeper's index while its flush flag is trusted
    (``workers.sweep_decision.attention_hold_ms``; 0: filed at once)."""
    if deliveries and sum(count for _, count in deliveries) != len(changes):
        raise ValueError("the deliveries must cover every change of the call, in order")
    # Every argument as bytes: redis-py then passes each one through as it is, where a str or an
    # int costs a type check chain and an encode each (most of a one-change request's packing).
    args = [b"%d" % now, b"%d" % business_id, b"%d" % flag_ttl_ms, b"%d" % max(0, history_max)]
    args += [source[:32].encode(), actor[:64].encode(), b"%d" % received_ms]
    args.append(b"%d" % max(1, delivery_ttl_s) if deliveries else b"0")
    args.append(b"%d" % attention_hold_ms)
    args.append(b",".join(b"%d" % count for _, count in deliveries))
    for i, c in enumerate(changes):
        expect = (expect_versions[i] if expect_versions is not None else None) or ""
        args += [c.target.key().encode(), b"%d" % c.occurred_at_ms, c.value_json().encode(), c.id.encode()]
        args.append(expect.encode())
    keys = list(_record_keys(k.prefix, business_id))
    keys += [mark.encode() for mark, _ in deliveries]
    return keys, args


@lru_cache(maxsize=4096)
def _record_keys(prefix: str, business_id: int) -> tuple[bytes, ...]:
    """The keys of a ``record.lua`` call for ``business_id`` (the same for every call: built and
    encoded once)."""
    k = Keys(prefix)
    names = (
        k.business(business_id, "desired"),
        k.business(business_id, "dver"),
        k.business(business_id, "cid"),
        k.business(business_id, "aver"),
        k.business(business_id, "pending"),
        k.seq(business_id),
        k.business(business_id, "stats"),
        k.business(business_id, "dead"),
        k.businesses_of(business_id),
        k.flush_dirty(business_id),
        k.flush_scheduled(business_id),
        k.business(business_id, "history"),
        k.attention_of(business_id, "pending"),
    )
    return tuple(name.encode() for name in names)


@dataclass(frozen=True)
class RecordReply:
    """One ``record.lua`` reply, per change in call order: the version it won with (``None``: it
    did not), whether it was a duplicate or a delivery recorded before; and whether the caller must
    send the flush message."""

    versions: list[str | None]
    duplicate: list[bool]
    send: bool
    delivered: list[bool]
    """Per change: its delivery was marked before (or by an earlier copy in the call): not looked at."""


def read_record_reply(reply: Sequence[Any]) -> RecordReply:
    *versions, send = reply
    return RecordReply(
        versions=[v if v not in ("", "=", "#") else None for v in versions],
        duplicate=[v == "=" for v in versions],
        send=bool(send),
        delivered=[v == "#" for v in versions],
    )


class Ledger:
    """Desired state of every target, in Redis. Cheap to build; holds no state of its own."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.r: Any = client  # decode_responses=True: every reply is str
        self.k = keys

    def __repr__(self) -> str:
        return f"Ledger({self.k!r})"

    # -- keys -------------------------------------------------------------
    def _biz_keys(self, business_id: int) -> dict[str, str]:
        return {
            name: self.k.business(business_id, name)
            for name in ("desired", "dver", "cid", "aver", "pending", "stats", "dead", "nonce")
        }

    def pending_key(self, business_id: int) -> str:
        return self.k.business(business_id, "pending")

    # -- writes -----------------------------------------------------------
    def record(
        self,
        changes: Sequence[Change],
        expect_versions: Sequence[str | None] | None = None,
        *,
        flag_ttl_ms: int = 60_000,
        attention_hold_ms: int = 0,
        flush_to_send: set[int] | None = None,
        duplicates: set[int] | None = None,
        source: str = "",
        actor: str = "",
        received_ms: int | None = None,
        history_max: int = 0,
    ) -> list[str | None]:
        """Record changes; returns per change the version it won with, or ``None`` if it did not.

        A change with the stored change's event time and value is a duplicate (no new version, no
        write): its index is added to ``duplicates``. Any other change that did not win is superseded.

        A business with a winning change is nudged in the same script (dirty flag set); when no
        flush was scheduled for it, its id is added to ``flush_to_send``: the caller sends one.

        With ``history_max`` > 0 the same script appends one history entry per change (outcome
        recorded, superseded or duplicate) naming ``source`` and ``actor`` and the receive time
        ``received_ms`` (default now) to the business's stream capped near ``history_max``.
        ``attention_hold_ms``: see :func:`record_call`.
        """
        if expect_versions is not None and len(expect_versions) != len(changes):
            raise ValueError("expect_versions must match changes one to one")
        by_business: dict[int, list[int]] = defaultdict(list)
        for i, change in enumerate(changes):
            by_business[change.target.business_id].append(i)
        result: list[str | None] = [None] * len(changes)
        now = now_ms()
        received = received_ms if received_ms is not None else now
        record = script(self.r, "record")
        # At most RECORD_CHUNK targets per script call, so one large request never holds Redis for long.
        # Each call compares versions itself (latest wins across chunks) and only the first call that
        # finds no flush scheduled answers "send" (one nudge per business).
        chunks = [
            (business_id, indexes[start : start + RECORD_CHUNK])
            for business_id, indexes in by_business.items()
            for start in range(0, len(indexes), RECORD_CHUNK)
        ]
        for business_id, indexes in chunks:
            keys, args = record_call(
                self.k,
                business_id,
                [changes[i] for i in indexes],
                [expect_versions[i] for i in indexes] if expect_versions is not None else None,
                now=now,
                flag_ttl_ms=flag_ttl_ms,
                history_max=history_max,
                source=source,
                actor=actor,
                received_ms=received,
                attention_hold_ms=attention_hold_ms,
            )
            reply = read_record_reply(record(keys=keys, args=args))
            for i, version, same in zip(indexes, reply.versions, reply.duplicate, strict=True):
                if same and duplicates is not None:
                    duplicates.add(i)
                result[i] = version
            if reply.send and flush_to_send is not None:
                flush_to_send.add(business_id)
        return result

    def _settle(self, business_id: int, mode: str, pairs: Sequence[tuple[str, str]], dead_id: str = "") -> list[int]:
        if not pairs:
            return []
        k = self._biz_keys(business_id)
        args: list[Any] = [now_ms(), mode, dead_id, business_id]
        for target_key, version in pairs:
            args += [target_key, version]
        keys = [k["dver"], k["aver"], k["pending"], k["stats"], k["dead"], self.k.attention_of(business_id, "pending")]
        ages = script(self.r, "settle")(keys=keys, args=args)
        return [int(a) for a in ages]

    def mark_applied(self, business_id: int, pairs: Sequence[tuple[str, str]]) -> list[int]:
        """Mark (target key, version) pairs applied; returns each one's ms since pending (-1: still pending)."""
        return self._settle(business_id, "applied", pairs)

    def mark_dead(self, business_id: int, pairs: Sequence[tuple[str, str]], dead_letter_id: str) -> list[int]:
        """Set targets aside under a dead letter; a newer pending change is left pending."""
        return self._settle(business_id, "dead", pairs, dead_letter_id)

    def unblock(self, business_id: int, pairs: Sequence[tuple[str, str]], *, new_key: bool) -> int:
        """Put dead-lettered targets back in pending (replay); ``new_key`` bumps their nonce."""
        k = self._biz_keys(business_id)
        args: list[Any] = [now_ms(), "1" if new_key else "0", business_id]
        for target_key, version in pairs:
            args += [target_key, version]
        keys = [k["dver"], k["pending"], k["dead"], k["nonce"], self.k.attention_of(business_id, "pending")]
        return int(script(self.r, "unblock")(keys=keys, args=args))

    def mark_suspect(self, business_id: int, target_keys: Sequence[str], due_ms: int) -> None:
        """Targets of a write whose outcome is unknown: write them again after ``due_ms``."""
        if target_keys:
            # With its entry in the sweeper's suspect index (the earliest due wins), in one MULTI/EXEC.
            pipe = self.r.pipeline(transaction=True)
            pipe.zadd(self.k.business(business_id, "suspect"), dict.fromkeys(target_keys, due_ms), gt=True)
            pipe.zadd(self.k.attention_of(business_id, "suspect"), {str(business_id): due_ms}, lt=True)
            pipe.execute()

    def repend_due_suspects(self, business_id: int) -> int:
        """Put suspects whose time has come back in pending under a new key; returns how many."""
        keys, args = self.repend_suspects_call(business_id, now_ms())
        return int(script(self.r, "repend_suspects")(keys=keys, args=args))

    def repend_suspects_call(self, business_id: int, now: int) -> tuple[list[str], list[Any]]:
        """The keys and args of ``repend_suspects.lua`` for ``business_id`` (to pipeline it)."""
        k = self._biz_keys(business_id)
        keys = [self.k.business(business_id, "suspect"), k["desired"], k["pending"], k["nonce"]]
        keys += [self.k.attention_of(business_id, "pending"), self.k.attention_of(business_id, "suspect")]
        return keys, [now, business_id]

    def repend_drift(
        self,
        business_id: int,
        drifted: Sequence[tuple[str, str]],
        *,
        max_repairs: int,
        window_ms: int,
        flag_ttl_ms: int,
        publish_state_key: str,
        publish_stores_key: str = "",
        stores_read: Sequence[str] = (),
        write_generation: int | None = None,
    ) -> DriftRepair:
        """Re-pend (target key, version) pairs a read-back found drifted, under a new key.

        Only while the read-back still describes the ledger (no write since the publish, each
        target still settled at that version); when a write landed since, ``stores_read`` join the
        pending publish's stores, so its read-back reads them again; when the write generation moved
        away from ``write_generation`` (a write landed, and was published, during the reading) the
        answer is ``stale``. Repairs of one target at one version, each within
        ``window_ms`` of the previous, are counted; past ``max_repairs`` the target is returned
        as persistent instead.
        """
        k = self._biz_keys(business_id)
        keys = [
            k["dver"],
            k["aver"],
            k["pending"],
            k["nonce"],
            self.k.business(business_id, "drift"),
            k["dead"],
            publish_state_key,
            self.k.business(business_id, "flush", "dirty"),
            self.k.business(business_id, "flush", "scheduled"),
            publish_stores_key or self.k.business(business_id, "publish", "stores"),
            self.k.attention_of(business_id, "pending"),
            self.k.business(business_id, "publish", "generation"),
        ]
        generation = "" if write_generation is None else str(write_generation)
        args: list[Any] = [now_ms(), max_repairs, flag_ttl_ms, window_ms, len(stores_read), business_id, generation]
        args += list(stores_read)
        for target_key, version in drifted:
            args += [target_key, version]
        reply = script(self.r, "repend_drift")(keys=keys, args=args)
        if reply and reply[0] in ("busy", "stale"):
            return DriftRepair(busy=True, stale=reply[0] == "stale")
        count = int(reply[1])
        return DriftRepair(
            repended=tuple(reply[2 : 2 + count]),
            persistent=tuple(reply[2 + count :]),
            send_flush=reply[0] == "send",
        )

    # -- reads ------------------------------------------------------------
    def view(self, business_id: int, scopes: Collection[str] | None = None) -> dict[str, TargetState]:
        """Every target of a business as of one moment (MULTI/EXEC): for read-backs and ``plan``.

        ``scopes`` keeps only the targets of those scopes (store keys, ``*`` for business level):
        a read-back of one store of three builds a third of the states."""
        k = self._biz_keys(business_id)
        pipe = self.r.pipeline(transaction=True)
        for name in ("desired", "dver", "aver", "dead"):
            pipe.hgetall(k[name])
        pipe.zrange(k["pending"], 0, -1)
        values, versions, applied, dead, pending = pipe.execute()
        waiting = set(pending)
        return {
            key: TargetState(
                value=json.loads(raw),
                version=versions[key],
                applied_version=applied.get(key),
                pending=key in waiting,
                dead=key in dead,
            )
            for key, raw in values.items()
            if key in versions and (scopes is None or key.split("|", 2)[1] in scopes)
        }

    def drift_repairs(self, business_id: int) -> dict[str, int]:
        """Targets repaired after drift: key -> repairs counted at their current version."""
        raw = self.r.hgetall(self.k.business(business_id, "drift"))
        return {key: int(value.split("|")[1]) for key, value in raw.items()}

    def pending(self, business_id: int, limit: int = 10_000) -> list[PendingRow]:
        """Targets of ``business_id`` whose desired version is newer than applied, oldest first."""
        k = self._biz_keys(business_id)
        flat = script(self.r, "pending")(
            keys=[k["pending"], k["desired"], k["dver"], k["cid"], k["nonce"]], args=[max(1, limit)]
        )
        rows = []
        for i in range(0, len(flat), 6):
            name, since, value, version, cid, nonce = flat[i : i + 6]
            rows.append(
                PendingRow(
                    target=Target.from_key(name),
                    value=json.loads(value),
                    version=version,
                    change_id=cid,
                    nonce=int(nonce or 0),
                    pending_since_ms=int(float(since)),
                )
            )
        return rows

    def pending_count(self, business_id: int) -> int:
        return int(self.r.zcard(self.pending_key(business_id)))

    def oldest_pending_ms(self, business_id: int) -> int | None:
        first = self.r.zrange(self.pending_key(business_id), 0, 0, withscores=True)
        return int(first[0][1]) if first else None

    def desired(self, target: Target) -> tuple[Any, str] | None:
        """The target's desired (value, version), or ``None`` if never recorded."""
        b = target.business_id
        pipe = self.r.pipeline(transaction=True)  # MULTI/EXEC: value and version of one moment
        pipe.hget(self.k.business(b, "desired"), target.key())
        pipe.hget(self.k.business(b, "dver"), target.key())
        value, version = pipe.execute()
        if value is None or version is None:
            return None
        return json.loads(value), version

    def settled_values(self, business_id: int, target_keys: Sequence[str]) -> dict[str, tuple[Any, str]]:
        """Of ``target_keys``, those whose desired version is applied: key -> (value, version).

        Pending, dead-lettered and never-recorded targets are left out. Values, desired and
        applied versions are read in one MULTI/EXEC, so they belong to one moment.
        """
        keys = list(dict.fromkeys(target_keys))
        if not keys:
            return {}
        pipe = self.r.pipeline(transaction=True)
        pipe.hmget(self.k.business(business_id, "desired"), keys)
        pipe.hmget(self.k.business(business_id, "dver"), keys)
        pipe.hmget(self.k.business(business_id, "aver"), keys)
        values, desired_versions, applied_versions = pipe.execute()
        out: dict[str, tuple[Any, str]] = {}
        for key, value, desired, applied in zip(keys, values, desired_versions, applied_versions, strict=True):
            if value is not None and desired is not None and applied is not None and applied >= desired:
                out[key] = (json.loads(value), desired)
        return out

    def applied_version(self, target: Target) -> str | None:
        return self.r.hget(self.k.business(target.business_id, "aver"), target.key())

    def all_desired(self, business_id: int) -> dict[str, tuple[Any, str]]:
        """Every target of a business: key -> (value, version). For status, tests and the demo."""
        pipe = self.r.pipeline(transaction=True)  # MULTI/EXEC: values and versions of one moment
        pipe.hgetall(self.k.business(business_id, "desired"))
        pipe.hgetall(self.k.business(business_id, "dver"))
        values, versions = pipe.execute()
        return {key: (json.loads(v), versions[key]) for key, v in values.items() if key in versions}

    def stats_key(self, business_id: int) -> str:
        """The business's counters: recorded, superseded, applied, dead."""
        return self.k.business(business_id, "stats")

    def stats(self, business_id: int) -> dict[str, int]:
        return {k: int(v) for k, v in self.r.hgetall(self.stats_key(business_id)).items()}

    def dead_targets(self, business_id: int) -> dict[str, str]:
        return dict(self.r.hgetall(self.k.business(business_id, "dead")))

    def businesses(self) -> list[int]:
        """Every business that ever recorded a change."""
        return sorted(b for members in self.businesses_by_shard(self.k.shards()).values() for b in members)

    def businesses_by_shard(self, shards: Iterable[int]) -> dict[int, list[int]]:
        """The businesses of each of ``shards`` (one round trip, one per node on a cluster). Each
        shard's set only grows, so sets read a moment apart never contradict each other."""
        wanted = list(shards)
        pipe = self.r.pipeline(transaction=False)
        for shard in wanted:
            pipe.smembers(self.k.businesses(shard))
        return {shard: sorted(int(b) for b in members) for shard, members in zip(wanted, pipe.execute(), strict=True)}
