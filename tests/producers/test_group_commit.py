"""The group commit's batching decision (pure, property-tested) and how it hands results back."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producers.group_commit import GroupCommit, plan_calls

sizes_st = st.lists(st.integers(min_value=0, max_value=40), max_size=30)
cap_st = st.integers(min_value=1, max_value=25)


@given(sizes_st, cap_st)
def test_every_unit_is_planned_once_in_arrival_order(sizes: list[int], cap: int) -> None:
    calls = plan_calls(sizes, cap)
    flat = [(s.request, u) for call in calls for s in call for u in range(s.start, s.stop)]
    assert flat == [(r, u) for r, size in enumerate(sizes) for u in range(size)]


@given(sizes_st, cap_st)
def test_calls_hold_at_most_cap_units_and_none_is_empty(sizes: list[int], cap: int) -> None:
    for call in plan_calls(sizes, cap):
        assert call and 0 < sum(s.stop - s.start for s in call) <= cap


@given(sizes_st, cap_st)
def test_a_request_that_fits_is_never_split(sizes: list[int], cap: int) -> None:
    calls = plan_calls(sizes, cap)
    for request, size in enumerate(sizes):
        holding = [i for i, call in enumerate(calls) if any(s.request == request for s in call)]
        if size == 0:
            assert holding == []
        elif size <= cap:
            assert len(holding) == 1
        else:
            assert len(holding) == -(-size // cap)  # ceil: cap-sized calls of its own, the rest shared


@given(sizes_st, cap_st)
def test_a_new_call_starts_only_when_the_next_request_does_not_fit(sizes: list[int], cap: int) -> None:
    calls = plan_calls(sizes, cap)
    for call, following in itertools.pairwise(calls):
        filled = sum(s.stop - s.start for s in call)
        first = following[0]
        assert filled + (first.stop - first.start) > cap or first.start > 0 or call[-1].request == first.request


def test_plan_calls_examples() -> None:
    assert plan_calls([], 5) == []
    assert [[(s.request, s.start, s.stop) for s in c] for c in plan_calls([2, 3, 1, 0, 4], 5)] == [
        [(0, 0, 2), (1, 0, 3)],
        [(2, 0, 1), (4, 0, 4)],
    ]
    assert [[(s.request, s.start, s.stop) for s in c] for c in plan_calls([12, 1], 5)] == [
        [(0, 0, 5)],
        [(0, 5, 10)],
        [(0, 10, 12), (1, 0, 1)],
    ]
    with pytest.raises(ValueError):
        plan_calls([1], 0)


class Recorded:
    """A ``run`` that answers each unit doubled and fails every call holding a unit < 0."""

    def __init__(self) -> None:
        self.windows: list[list[tuple[Any, list[int]]]] = []

    async def __call__(self, calls: list[tuple[Any, list[int]]]) -> list[list[int] | BaseException]:
        self.windows.append(calls)
        return [
            ValueError(f"bad call {key}") if any(u < 0 for u in units) else [u * 2 for u in units]
            for key, units in calls
        ]


async def _gather(group: GroupCommit[Any, int, int], requests: list[tuple[Any, list[int]]]) -> list[Any]:
    return await asyncio.gather(*(group.submit(k, u) for k, u in requests), return_exceptions=True)


def test_one_window_one_run_each_waiter_gets_its_own_results() -> None:
    run = Recorded()
    group: GroupCommit[str, int, int] = GroupCommit(run, window_s=0, cap=4)
    got = asyncio.run(_gather(group, [("a", [1, 2]), ("b", [3]), ("a", [4, 5, 6]), ("a", [])]))
    assert got == [[2, 4], [6], [8, 10, 12], []]
    assert len(run.windows) == 1  # both keys, three calls (a: 2 + 3 > cap 4), one run
    assert sorted((k, u) for k, u in run.windows[0]) == [("a", [1, 2]), ("a", [4, 5, 6]), ("b", [3])]


def test_a_failing_call_fails_only_its_own_waiters() -> None:
    run = Recorded()
    group: GroupCommit[str, int, int] = GroupCommit(run, window_s=0, cap=10)
    got = asyncio.run(_gather(group, [("good", [1]), ("bad", [2]), ("bad", [-1]), ("good", [3])]))
    assert got[0] == [2] and got[3] == [6]
    assert isinstance(got[1], ValueError) and isinstance(got[2], ValueError)  # same call as the bad unit


def test_a_request_split_over_calls_fails_when_any_part_fails() -> None:
    run = Recorded()
    group: GroupCommit[str, int, int] = GroupCommit(run, window_s=0, cap=2)
    got = asyncio.run(_gather(group, [("k", [1, 2, 3, -4, 5]), ("other", [7])]))
    assert isinstance(got[0], ValueError) and got[1] == [14]
    got = asyncio.run(_gather(group, [("k", [1, 2, 3, 4, 5])]))
    assert got == [[2, 4, 6, 8, 10]]


def test_a_run_that_raises_fails_every_waiter_of_its_window() -> None:
    async def broken(calls: list[tuple[str, list[int]]]) -> list[list[int] | BaseException]:
        raise ConnectionError("redis went away")

    group: GroupCommit[str, int, int] = GroupCommit(broken, window_s=0, cap=10)
    got = asyncio.run(_gather(group, [("a", [1]), ("b", [2])]))
    assert all(isinstance(g, ConnectionError) for g in got)


def test_a_wrong_number_of_results_fails_that_call_not_the_others() -> None:
    async def short(calls: list[tuple[str, list[int]]]) -> list[list[int] | BaseException]:
        return [units[:-1] if key == "short" else units for key, units in calls]

    group: GroupCommit[str, int, int] = GroupCommit(short, window_s=0, cap=10)
    got = asyncio.run(_gather(group, [("short", [1, 2]), ("fine", [3])]))
    assert isinstance(got[0], RuntimeError) and got[1] == [3]


def test_submits_after_a_window_closed_open_the_next_one() -> None:
    run = Recorded()
    group: GroupCommit[str, int, int] = GroupCommit(run, window_s=0, cap=10)

    async def two_windows() -> list[Any]:
        first = await _gather(group, [("a", [1]), ("a", [2])])
        second = await _gather(group, [("a", [3])])
        return [first, second]

    assert asyncio.run(two_windows()) == [[[2], [4]], [[6]]]
    assert [len(w) for w in run.windows] == [1, 1]  # the first window's two requests in one call
