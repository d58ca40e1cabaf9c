"""The Lua scripts menusync keeps its Redis state honest with, loaded once per client (and
:func:`run_async`, the same scripts pipelined over an asyncio client).

Every call is checked to touch one Redis Cluster slot (:class:`CrossSlotError` otherwise), on a
single Redis too, so that a script whose keys would span slots fails in every test run, not
first on a cluster.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis
from redis.commands.core import Script
from redis.crc import key_slot
from redis.exceptions import NoScriptError


class CrossSlotError(RuntimeError):
    """A script was called with keys in more than one cluster slot (a key-layout bug)."""


@cache
def _source(name: str) -> str:
    return resources.files("workers").joinpath("lua", f"{name}.lua").read_text()


@cache
def _sha(name: str) -> str:
    return hashlib.sha1(_source(name).encode()).hexdigest()


@lru_cache(maxsize=65_536)
def _slot(key: Any) -> int:
    return int(key_slot(key.encode() if isinstance(key, str) else key))


def check_one_slot(name: str, keys: Sequence[Any]) -> None:
    """Raise :class:`CrossSlotError` when ``keys`` hash to more than one cluster slot.

    The slot of each key is remembered (a business's script calls repeat the same keys; a key of
    its own per call, a webhook's delivery mark, costs one CRC), so that the check costs lookups,
    not a CRC per key, on the receiver's hot path."""
    if len(keys) > 1 and len({_slot(k) for k in keys}) > 1:
        slots = {_slot(k) for k in keys}
        shown = ", ".join(str(k) for k in list(keys)[:4])
        raise CrossSlotError(f"script {name} touches {len(slots)} cluster slots (keys {shown}, ...)")


class SlotCheckedScript:
    """A registered script whose every call is first checked by :func:`check_one_slot`."""

    def __init__(self, name: str, inner: Script) -> None:
        self.name = name
        self.inner = inner

    def __call__(self, keys: Sequence[Any] = (), args: Iterable[Any] = (), client: Any = None) -> Any:
        check_one_slot(self.name, keys)
        return self.inner(keys=list(keys), args=list(args), client=client)

    def __repr__(self) -> str:
        return f"SlotCheckedScript({self.name!r})"


def script(client: redis.Redis, name: str) -> SlotCheckedScript:
    """The registered script ``workers/lua/<name>.lua`` for ``client`` (EVALSHA with fallback)."""
    cached: dict[str, SlotCheckedScript] = client.__dict__.setdefault("_menusync_scripts", {})
    if name not in cached:
        cached[name] = SlotCheckedScript(name, client.register_script(_source(name)))
    return cached[name]


def run_scripts(client: redis.Redis, name: str, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
    """Run ``name`` once per (keys, args) in one pipeline (one round trip per node); replies in order.

    Each call is one atomic script on its own slot; the calls are not atomic together. A server
    that does not know the script yet gets it loaded once and the calls it refused run again.
    """
    if not calls:
        return []
    for keys, _ in calls:
        check_one_slot(name, keys)
    sha = _sha(name)

    def send(batch: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for keys, args in batch:
            pipe.evalsha(sha, len(keys), *keys, *args)
        return list(pipe.execute(raise_on_error=False))

    replies = send(calls)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        client.script_load(_source(name))
        for i, reply in zip(missing, send([calls[i] for i in missing]), strict=True):
            replies[i] = reply
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


async def run_async(
    client: AsyncRedis,
    name: str,
    calls: Sequence[tuple[Sequence[Any], Sequence[Any]]],
    *,
    wait: tuple[int, int] | None = None,
) -> tuple[list[Any], int | None]:
    """The asyncio twin of :func:`script`: run ``workers/lua/<name>.lua`` once per (keys, args) in ONE
    pipelined round trip, then ``WAIT numreplicas timeout_ms`` on the same connection when ``wait``
    is given (so it counts exactly these writes). Answers the replies in call order, each the
    script's answer or the exception of that call (never raised: one failing call fails only
    itself), and the WAIT reply (``None`` without ``wait``). A server that does not know the script
    gets it loaded once and the refused calls (which ran nothing) sent again."""
    for keys, _ in calls:
        check_one_slot(name, keys)
    replies: list[Any] = [None] * len(calls)
    todo = list(range(len(calls)))
    acked: int | None = None
    for attempt in range(2):
        pipe = client.pipeline(transaction=False)
        for i in todo:
            keys, args = calls[i]
            pipe.evalsha(_sha(name), len(keys), *keys, *args)
        if wait is not None:
            pipe.wait(*wait)
        answers = await pipe.execute(raise_on_error=False)
        if wait is not None:
            *answers, last = answers
            if isinstance(last, Exception):
                raise last
            # The resent calls may go over another connection: each WAIT speaks for its own writes.
            acked = int(last) if acked is None else min(acked, int(last))
        missing = [i for i, answer in zip(todo, answers, strict=True) if isinstance(answer, NoScriptError)]
        for i, answer in zip(todo, answers, strict=True):
            replies[i] = answer
        if not missing or attempt:
            break
        await client.script_load(_source(name))
        todo = missing
    return replies, acked
