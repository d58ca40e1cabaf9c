"""A real Redis client that lets a test land writes *between* the commands of a read.

:class:`InterleavingRedis` calls ``after_command(name, args)`` after every command it sends. A
non-transactional pipeline sends its commands one at a time through the client (so the hook runs
between them, where a concurrent client's command could land); a MULTI/EXEC block and a script run
as one command, and the hook runs once they are done. Used by the forced-interleaving regression
tests and the ledger's state machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import redis


class _OneByOnePipeline:
    """A non-transactional pipeline that sends its commands one at a time through the client."""

    def __init__(self, client: InterleavingRedis) -> None:
        self.client = client
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Callable[..., _OneByOnePipeline]:
        def queue(*args: Any, **kwargs: Any) -> _OneByOnePipeline:
            self.calls.append((name, args, kwargs))
            return self

        return queue

    def execute(self) -> list[Any]:
        calls, self.calls = self.calls, []
        return [getattr(self.client, name)(*args, **kwargs) for name, args, kwargs in calls]


class _AtomicPipeline:
    """MULTI/EXEC as redis-py sends it, with the hook called once the block has run."""

    def __init__(self, client: InterleavingRedis, pipe: Any) -> None:
        self.client, self.pipe = client, pipe

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipe, name)

    def execute(self) -> list[Any]:
        replies = self.pipe.execute()
        self.client.after_command("EXEC", ())
        return list(replies)


class InterleavingRedis(redis.Redis):
    """A real client that calls ``after_command(name, args)`` after every command it sends."""

    after_command: Callable[[str, tuple[Any, ...]], None] = staticmethod(lambda name, args: None)

    def execute_command(self, *args: Any, **options: Any) -> Any:
        reply = super().execute_command(*args, **options)
        self.after_command(str(args[0]).upper(), args[1:])
        return reply

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        if transaction:
            return _AtomicPipeline(self, super().pipeline(transaction=True, shard_hint=shard_hint))
        return _OneByOnePipeline(self)


def interleaving_client(redis_url: str) -> InterleavingRedis:
    """A decoded-responses client on ``redis_url`` (as the workers use), with no hook yet."""
    return cast(InterleavingRedis, InterleavingRedis.from_url(redis_url, decode_responses=True))
