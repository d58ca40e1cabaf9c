"""The overview's red cells: where an alert of docs/metrics.md would fire."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from producers.console.views import overview_row
from workers.deadletters import DeadLetter
from workers.runtime import Runtime, runtime
from workers.status import BusinessStatus

NOW = 1_800_000_000_000


@pytest.fixture
def rt(r: Any) -> Iterator[Runtime]:
    yield runtime()


def _status(**changes: Any) -> BusinessStatus:
    values: dict[str, Any] = {
        "business_id": 398,
        "pending": 0,
        "oldest_pending_age_ms": None,
        "recorded": 0,
        "superseded": 0,
        "applied": 0,
        "dead": 0,
        "last_publish_at_ms": NOW - 60_000,
        "last_publish_outcome": "ok (generation 3)",
        "publish_due_in_ms": None,
        "publish_waiting_since_ms": None,
        "dead_letters": {},
        "credential": "ok",
        "flushing": False,
        "last_reconcile": {"at_ms": str(NOW - 60_000), "drift": "0"},
    }
    values.update(changes)
    return BusinessStatus(**values)


def test_a_quiet_business_has_no_red_cell(rt: Runtime) -> None:
    row = overview_row(rt, _status(), NOW)
    assert row.alerts == [] and not any(c.alert for c in row.cells.values())


@pytest.mark.parametrize(
    ("changes", "column"),
    [
        ({"oldest_pending_age_ms": 120_001}, "oldest"),
        ({"publish_due_in_ms": -60_001}, "due"),
        ({"last_publish_outcome": "dead-lettered: request_invalid"}, "publish"),
        ({"credential": "blocked: auth_revoked"}, "credential"),
        ({"dead_letters": {"auth_revoked": 1}}, "dead"),
        ({"last_reconcile": {"at_ms": str(NOW - 60_000), "drift": "1", "persistent": "1"}}, "drift"),
        ({"last_reconcile": {"at_ms": str(NOW - 60_000), "drift": "11"}}, "drift"),
        ({"last_reconcile": {"at_ms": str(NOW - 2 * 900_000 - 1), "drift": "0"}}, "drift"),
    ],
)
def test_each_alert_turns_its_cell_red(rt: Runtime, changes: dict[str, Any], column: str) -> None:
    row = overview_row(rt, _status(**changes), NOW)
    assert row.cells[column].alert, (column, row.cells[column])
    assert [k for k, c in row.cells.items() if c.alert] == [column]


def test_an_old_dead_letter_of_an_ordinary_code_is_amber_a_recent_one_red(rt: Runtime) -> None:
    rt.dead_letters.add(DeadLetter(business_id=398, error_code="request_invalid", last_failure_ms=NOW - 3_600_000))
    old = overview_row(rt, _status(dead_letters={"request_invalid": 1}), NOW).cells["dead"]
    assert old.warn and not old.alert
    rt.dead_letters.add(DeadLetter(business_id=398, error_code="request_invalid", last_failure_ms=NOW - 60_000))
    recent = overview_row(rt, _status(dead_letters={"request_invalid": 2}), NOW).cells["dead"]
    assert recent.alert
