"""Hostile input the receiver once took; each test guards the fix.

- An event time far in the future wins every later comparison (versions are event times), so one
  bad delivery pins a target's value for good: every real change after it is "superseded".
- Ids beyond 64 bits (business, entity, brand, branch) and booleans as entity ids are recorded as
  if valid (``CanonicalChange`` / ``ChangeBatch`` in workers/changes.py: ``int`` fields with only
  a lower bound, in pydantic's lax mode, where ``true`` is the integer 1).

Fixed by strict types with an upper bound on ids and a 5-minute limit on event times ahead of the clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hostile_support import API_TOKEN, BUSINESS, STORE, assert_rejection_says_why, canonical, dumps, ledger_keys


def _post(client: Any, body: dict[str, Any]) -> Any:
    return client.post(
        "/v1/changes",
        content=dumps(body),
        headers={"authorization": f"Bearer {API_TOKEN}", "content-type": "application/json"},
    )


def test_an_event_time_far_in_the_future_is_refused(client: Any, r: Any, run_prefix: str) -> None:
    resp = _post(client, canonical(change_id="future", occurred_at="9999-12-31T23:59:59Z"))
    try:
        assert resp.status_code == 400, f"accepted an event from year 9999: {resp.status_code} {resp.text}"
        assert_rejection_says_why(resp)
    finally:
        # What it does when accepted: a real change made now is superseded, for ever.
        now = datetime.now(UTC).isoformat()
        later = _post(client, canonical(change_id="now", occurred_at=now, enabled=True))
        pinned = later.status_code == 202 and later.json().get("superseded") == 1
        for key in ledger_keys(r, run_prefix):
            r.delete(key)
    assert not pinned


def test_an_event_time_a_day_ahead_is_refused(client: Any, r: Any, run_prefix: str) -> None:
    ahead = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    resp = _post(client, canonical(change_id="ahead", occurred_at=ahead))
    for key in ledger_keys(r, run_prefix):
        r.delete(key)
    assert resp.status_code == 400, f"accepted an event a day ahead of the clock: {resp.text}"


@pytest.mark.parametrize(
    ("what", "body"),
    [
        ("entity id 2**63", canonical(entity_ids=[2**63])),
        ("entity id 10**30", canonical(entity_ids=[10**30])),
        ("brand id 2**70", canonical(stores=[{"brand_id": 2**70, "branch_id": STORE["branch_id"]}])),
        ("business id 2**70", {**canonical(), "business_id": 2**70}),
        ("entity id true", canonical(entity_ids=[True])),
    ],
)
def test_ids_that_are_not_64_bit_integers_are_refused(
    client: Any, r: Any, run_prefix: str, what: str, body: dict[str, Any]
) -> None:
    resp = _post(client, body)
    recorded = ledger_keys(r, run_prefix)
    for key in recorded:
        r.delete(key)
    assert resp.status_code == 400, f"{what} accepted: {resp.status_code} {resp.text}"
    assert recorded == []
    assert BUSINESS
