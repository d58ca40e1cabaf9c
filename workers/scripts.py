"""The Lua scripts menusync keeps its Redis state honest with, loaded once per client (and
:func:`run_async`, the same scripts pipelined over an asyncio client)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis
from redis.commands.core import Script
from redis.exceptions import NoScriptError


@cache
def _source(name: str) -> str:
    return resources.files("workers").joinpath("lua", f"{name}.lua").read_text()


def script(client: redis.Redis, name: str) -> Script:
    """The registered script ``workers/lua/<name>.lua`` for ``client`` (EVALSHA with fallback)."""
    cached: dict[str, Script] = client.__dict__.setdefault("_menusync_scripts", {})
    if name not in cached:
        cached[name] = client.register_script(_source(name))
    return cached[name]


@cache
def _sha(name: str) -> str:
    return hashlib.sha1(_source(name).encode()).hexdigest()


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
