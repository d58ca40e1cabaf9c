"""Re-home the keys of a deployment from before the cluster layout (``menusync migrate-keys``).

Before the layout of :class:`config.redis.Keys`, per-business keys read ``<prefix>:<name>:B`` and
the version counter, the businesses set and the sweeper's indexes were one key each. The
migration, run with menusync stopped, moves each legacy key to its place:

- a per-business key is renamed to ``<prefix>:{shard}:<name>:B``;
- dead letters, timers and mappings move under their group tag (``<prefix>:{dlq}:...``);
- the version counter is copied to every shard (each then continues above every version handed
  out: versions of a target keep their order), the businesses set and the attention and
  read-back indexes are split by shard.

:func:`plan_key` is pure: it says where one legacy key goes. :func:`migrate_keys` applies the plan
(or only counts it: a dry run).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from config.redis import Keys

#: Per-business key names: the key is ``<prefix>:<name>:<business id>``.
BUSINESS_NAMES = frozenset(
    {
        "desired", "dver", "cid", "aver", "pending", "stats", "dead", "nonce", "suspect", "drift",
        "history", "publishes", "flush:scheduled", "flush:dirty", "flush:watch", "publish",
        "publish:stores", "publish:generation", "publish:last", "publish:in_flight", "reconcile:last",
        "lease", "breaker", "budget", "providers", "providers:unreadable", "stores",
        "credential:blocked", "ops:populated",
    }
)  # fmt: skip
#: Keys that became one per shard.
SPLIT_NAMES = frozenset(
    {"seq", "businesses", "attention:pending", "attention:suspect", "attention:publish", "reconcile:due"}
)
COPY_NAMES = frozenset({"reconcile:interval"})
GROUPS = ("dlq", "timers", "map")


class LegacyLayout(RuntimeError):
    """Redis holds keys of the layout before Redis Cluster support: menusync would not see them."""


def legacy_keys_present(client: Any, keys: Keys) -> list[str]:
    """The one-per-deployment keys of the legacy layout that exist (``<prefix>:seq``,
    ``<prefix>:businesses``, ...): any deployment that recorded a change has them. A handful of
    EXISTS, cheap enough for every process start."""
    names = [f"{keys.prefix}:{name}" for name in sorted(SPLIT_NAMES)]
    pipe = client.pipeline(transaction=False)  # independent reads, one per key (slot)
    for name in names:
        pipe.exists(name)
    return [name for name, found in zip(names, pipe.execute(), strict=True) if found]


def refuse_legacy_layout(client: Any, keys: Keys) -> None:
    """Raise :class:`LegacyLayout` when legacy keys are present: started on them, menusync would
    see an empty ledger and the changes waiting there would never reach klikit."""
    found = legacy_keys_present(client, keys)
    if found:
        raise LegacyLayout(
            f"Redis holds keys of menusync's layout from before Redis Cluster support ({', '.join(found)}): "
            "this version would not see the changes they hold. Stop every menusync process, run "
            "`menusync migrate-keys` (a dry run), then `menusync migrate-keys --apply`."
        )


@dataclass(frozen=True)
class Move:
    """Where one legacy key goes: ``rename`` to ``target``, ``split`` by shard, ``copy`` to every shard."""

    kind: str
    family: str
    target: str = ""


def plan_key(keys: Keys, key: str) -> Move | None:
    """The move of one key under ``keys.prefix``; ``None`` for a key that stays (or is not ours)."""
    head = f"{keys.prefix}:"
    if not key.startswith(head) or "{" in key:
        return None
    rest = key[len(head) :]
    if rest in SPLIT_NAMES:
        return Move("split", rest)
    if rest in COPY_NAMES:
        return Move("copy", rest)
    group, _, tail = rest.partition(":")
    if group in GROUPS and tail:
        return Move("rename", group, keys.group(group, tail))
    name, _, business = rest.rpartition(":")
    if name in BUSINESS_NAMES and business.isdigit():
        return Move("rename", name, keys.business(int(business), *name.split(":")))
    return None


def migrate_keys(client: Any, keys: Keys, *, apply: bool) -> dict[str, int]:
    """Move every legacy key (counts per family); with ``apply=False`` only count (a dry run)."""
    counts: Counter[str] = Counter()
    for key in list(client.scan_iter(match=f"{keys.prefix}:*", count=1000)):
        move = plan_key(keys, key)
        if move is None:
            continue
        counts[move.family] += 1
        if apply:
            _apply(client, keys, key, move)
    return dict(sorted(counts.items()))


def _apply(client: Any, keys: Keys, key: str, move: Move) -> None:
    if move.kind == "rename":
        client.rename(key, move.target)
        return
    name = move.family
    if move.kind == "copy":
        value = client.get(key)
        for shard in keys.shards():
            client.set(keys.shard(shard, *name.split(":")), value)
    elif name == "seq":
        top = int(client.get(key) or 0)
        for shard in keys.shards():
            target = keys.shard(shard, "seq")
            if int(client.get(target) or 0) < top:
                client.set(target, top)
    elif name == "businesses":
        for member in client.smembers(key):
            client.sadd(keys.businesses_of(int(member)), member)
    else:  # a zset of business -> ms: each entry to its shard's index, the earliest time wins
        for member, score in client.zrange(key, 0, -1, withscores=True):
            target = keys.shard(keys.shard_of(int(member)), *name.split(":"))
            client.zadd(target, {member: score}, lt=True)
    client.delete(key)
