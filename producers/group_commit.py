"""Group commit: requests that arrive within one short window share their Redis calls.

:class:`GroupCommit` behaves as follows (one instance per kind of call, on one event loop):

- ``await submit(key, units)`` queues a request's units (for the record script: its changes) and
  answers one result per unit, in order. An empty request answers ``[]`` at once.
- The first submit while no window is open opens one; every submit until it closes joins it.
  With no commit of this group in flight the window closes once the event loop's current
  callbacks have run (a lone request waits for nothing); while one is in flight it stays open
  until that commit returns, ``window_s`` at most (so requests gather while Redis works, and
  none waits longer than ``window_s`` for its window to close). A window closes once; later
  submits open the next, which may commit while the previous one still waits for Redis (each
  is complete on its own).
- On close, the requests of each key are packed into calls by :func:`plan_calls` (pure: whole
  requests in arrival order, at most ``cap`` units a call, a request larger than ``cap`` split
  over calls of its own), and ``run`` is awaited ONCE with every call of the window (so that it
  can send them in one round trip). ``run`` answers, per call, either one result per unit of
  the call or an exception.
- Each waiter gets exactly its own units' results. A call that failed (or answered the wrong
  number of results) fails only the waiters with units in it, with that call's exception; a
  ``run`` that raises fails every waiter of the window.
- A waiter that stops waiting (its request was cancelled) after its units joined a window does
  not take them back: they are committed with the window, and the result is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
U = TypeVar("U")
R = TypeVar("R")


@dataclass(frozen=True)
class Slice:
    """Units ``start:stop`` of the window's request number ``request`` (of one key)."""

    request: int
    start: int
    stop: int


def plan_calls(sizes: Sequence[int], cap: int) -> list[list[Slice]]:
    """Pack requests of ``sizes`` units (arrival order) into calls of at most ``cap`` units.

    Whole requests join the call being filled while they fit; one that does not fit starts the
    next call; one larger than ``cap`` is cut into ``cap``-sized calls of its own (its last part
    may be shared with the requests after it). Requests of 0 units get no slice. Every unit
    appears exactly once, in arrival order.
    """
    if cap < 1:
        raise ValueError("cap must be at least 1")
    calls: list[list[Slice]] = []
    current: list[Slice] = []
    filled = 0
    for request, size in enumerate(sizes):
        if size <= 0:
            continue
        if filled and filled + size > cap:
            calls.append(current)
            current, filled = [], 0
        start = 0
        while size - start > cap:  # only a request larger than cap, alone in its calls
            calls.append([Slice(request, start, start + cap)])
            start += cap
        current.append(Slice(request, start, size))
        filled += size - start
    if current:
        calls.append(current)
    return calls


@dataclass
class _Waiter(Generic[U, R]):
    units: list[U]
    future: asyncio.Future[list[R]]


#: ``run(calls)`` with ``calls`` = [(key, units of the call)], answering per call its results or an exception.
Run = Callable[[list[tuple[K, list[U]]]], Awaitable[list[list[R] | BaseException]]]


class GroupCommit(Generic[K, U, R]):
    """Collects requests for ``window_s`` and commits them in calls of at most ``cap`` units (module doc)."""

    def __init__(self, run: Run[K, U, R], *, window_s: float, cap: int) -> None:
        self._run = run
        self.window_s = max(0.0, window_s)
        self.cap = cap
        self._open: dict[K, list[_Waiter[U, R]]] = {}
        self._closing: asyncio.Handle | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # a reference to each commit, so none is collected
        self._in_flight = 0

    def __repr__(self) -> str:
        return f"GroupCommit(window_s={self.window_s}, cap={self.cap})"

    async def submit(self, key: K, units: Sequence[U]) -> list[R]:
        if not units:
            return []
        loop = asyncio.get_running_loop()
        waiter: _Waiter[U, R] = _Waiter(list(units), loop.create_future())
        self._open.setdefault(key, []).append(waiter)
        if self._closing is None:
            if self._in_flight and self.window_s:
                self._closing = loop.call_later(self.window_s, self._close)
            else:
                self._closing = loop.call_soon(self._close)
        return await waiter.future

    def _close(self) -> None:
        window, self._open, self._closing = self._open, {}, None
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._commit(window))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _commit(self, window: dict[K, list[_Waiter[U, R]]]) -> None:
        try:
            await self._commit_window(window)
        finally:
            self._in_flight -= 1
            if not self._in_flight and self._closing is not None:
                # Nothing in flight any more: the open window has nothing left to wait for.
                self._closing.cancel()
                self._closing = asyncio.get_running_loop().call_soon(self._close)

    async def _commit_window(self, window: dict[K, list[_Waiter[U, R]]]) -> None:
        calls: list[tuple[K, list[U]]] = []
        owners: list[list[tuple[_Waiter[U, R], Slice]]] = []
        for key, waiters in window.items():
            for planned in plan_calls([len(w.units) for w in waiters], self.cap):
                parts = [(waiters[s.request], s) for s in planned]
                calls.append((key, [u for w, s in parts for u in w.units[s.start : s.stop]]))
                owners.append(parts)
        try:
            answers = list(await self._run(calls))
            if len(answers) != len(calls):
                raise RuntimeError(f"group commit: {len(answers)} answers for {len(calls)} calls")
        except BaseException as exc:  # handed to every waiter, whose request re-raises it
            answers = [exc] * len(calls)
        results: dict[int, list[Any]] = {}
        failed: dict[int, BaseException] = {}
        for (_, units), parts, answer in zip(calls, owners, answers, strict=True):
            if not isinstance(answer, BaseException) and len(answer) != len(units):
                answer = RuntimeError(f"group commit: {len(answer)} results for {len(units)} units")
            offset = 0
            for waiter, s in parts:
                if isinstance(answer, BaseException):
                    failed.setdefault(id(waiter), answer)
                    continue
                got = results.setdefault(id(waiter), [None] * len(waiter.units))
                got[s.start : s.stop] = answer[offset : offset + s.stop - s.start]
                offset += s.stop - s.start
        for waiters in window.values():
            for waiter in waiters:
                if waiter.future.done():  # the request stopped waiting
                    continue
                if id(waiter) in failed:
                    waiter.future.set_exception(failed[id(waiter)])
                else:
                    waiter.future.set_result(results[id(waiter)])
