"""``menusync status``, ``dlq`` and ``credentials`` against real Redis (typer's CliRunner)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.app import app
from workers.changes import Change, Store, Target
from workers.deadletters import DeadLetter
from workers.queues import queue_name
from workers.runtime import Runtime, runtime

BUSINESS = 398
STORE = Store(brand_id=5297, branch_id=1293)
runner = CliRunner()


@pytest.fixture
def rt(r: Any) -> Iterator[Runtime]:
    import workers.actors

    workers.actors.broker.flush_all()
    yield runtime()
    workers.actors.broker.flush_all()


def _dead_write(rt: Runtime, code: str, status: int, entity: int = 150) -> tuple[DeadLetter, str]:
    target = Target(business_id=BUSINESS, store=STORE, level="item", entity_id=entity, field="enabled")
    change = Change(id=f"c-{entity}", target=target, value=False, occurred_at_ms=1_795_000_000_000)
    (version,) = rt.ledger.record([change])
    assert version is not None
    record = rt.dead_letters.add(
        DeadLetter(
            business_id=BUSINESS,
            targets=[(target.key(), version)],
            change_ids=[change.id],
            operation="enable_items",
            path="/v1/partner/menus/items/enable",
            body={"ids": [entity], "isEnabled": False},
            idempotency_key=f"ms1-test-{entity}",
            error_code=code,
            http_status=status,
            request_id="req_test",
            reason="scripted",
        )
    )
    rt.ledger.mark_dead(BUSINESS, [(target.key(), version)], record.id)
    assert rt.ledger.pending_count(BUSINESS) == 0
    return record, target.key()


def test_replaying_a_conflict_needs_a_new_key(rt: Runtime) -> None:
    record, key = _dead_write(rt, "state_idempotency_conflict", 409)
    refused = runner.invoke(app, ["dlq", "replay", record.id])
    assert refused.exit_code == 2, refused.output
    assert "--new-key" in refused.output
    assert rt.ledger.pending_count(BUSINESS) == 0
    assert rt.dead_letters.count(BUSINESS) == 1

    done = runner.invoke(app, ["dlq", "replay", record.id, "--new-key"])
    assert done.exit_code == 0, done.output
    assert "1 target(s) pending again" in done.output
    rows = rt.ledger.pending(BUSINESS)
    assert [row.target.key() for row in rows] == [key]
    assert rows[0].nonce == 1  # a new Idempotency-Key on the next write
    assert rt.redis.exists(rt.keys.flush_scheduled(BUSINESS))  # the flush was nudged
    # Replayed: out of the open list and the counts, still readable by id.
    assert rt.dead_letters.count() == 0
    assert rt.dead_letters.counts_by_code() == {}
    shown = runner.invoke(app, ["dlq", "show", record.id])
    assert shown.exit_code == 0
    assert json.loads(shown.output)["status"] == "replayed"
    again = runner.invoke(app, ["dlq", "replay", record.id, "--new-key"])
    assert again.exit_code == 1


def test_replaying_a_plain_dead_letter_keeps_the_key(rt: Runtime) -> None:
    record, key = _dead_write(rt, "resource_not_found", 404)
    done = runner.invoke(app, ["dlq", "replay", record.id])
    assert done.exit_code == 0, done.output
    rows = rt.ledger.pending(BUSINESS)
    assert [(row.target.key(), row.nonce) for row in rows] == [(key, 0)]


def test_list_counts_by_code_and_drop(rt: Runtime) -> None:
    a, _ = _dead_write(rt, "resource_not_found", 404, entity=151)
    _dead_write(rt, "resource_not_found", 404, entity=152)
    _dead_write(rt, "request_invalid", 400, entity=153)
    listed = runner.invoke(app, ["dlq", "list"])
    assert listed.exit_code == 0, listed.output
    assert "resource_not_found" in listed.output and "request_invalid" in listed.output
    assert a.id in listed.output
    assert rt.dead_letters.counts_by_code() == {"resource_not_found": 2, "request_invalid": 1}
    dropped = runner.invoke(app, ["dlq", "drop", a.id])
    assert dropped.exit_code == 0
    assert rt.dead_letters.counts_by_code() == {"resource_not_found": 1, "request_invalid": 1}
    assert runner.invoke(app, ["dlq", "show", a.id]).exit_code == 1
    only = runner.invoke(app, ["dlq", "list", "--code", "request_invalid"])
    assert "request_invalid" in only.output and a.id not in only.output


def test_status_reports_pending_dead_letters_credentials_and_queues(rt: Runtime) -> None:
    _dead_write(rt, "auth_invalid_credentials", 401, entity=160)
    target = Target(business_id=BUSINESS, store=STORE, level="item", entity_id=161, field="enabled")
    rt.ledger.record([Change(id="p-1", target=target, value=True, occurred_at_ms=1_795_000_000_001)])
    rt.redis.set(rt.keys.business(BUSINESS, "credential", "blocked"), "auth_invalid_credentials")
    rt.redis.hset(rt.keys.publish_last(BUSINESS), mapping={"at_ms": 1, "generation": 3, "request_id": "r"})
    import workers.actors

    workers.actors.flush_business.send_with_options(args=(BUSINESS,), delay=60_000)
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    (business,) = [b for b in report["businesses"] if b["business_id"] == BUSINESS]
    assert business["pending"] == 1
    assert business["oldest_pending_age_ms"] >= 0
    assert business["dead_letters"] == {"auth_invalid_credentials": 1}
    assert business["credential"] == "blocked: auth_invalid_credentials"
    assert business["last_publish_outcome"].startswith("ok")
    flush = next(q for q in report["queues"] if q["queue"] == queue_name(rt.settings.prefix, "flush"))
    assert flush["delayed"] == 1
    assert flush["oldest_delayed_age_ms"] is not None and flush["oldest_delayed_overdue_ms"] == 0
    table = runner.invoke(app, ["status", "--business", str(BUSINESS)])
    assert table.exit_code == 0
    assert "398" in table.output and "blocked" in table.output

    cleared = runner.invoke(app, ["credentials", "clear", str(BUSINESS)])
    assert cleared.exit_code == 0, cleared.output
    assert not rt.redis.exists(rt.keys.business(BUSINESS, "credential", "blocked"))
    assert "cleared" in cleared.output


def test_no_secret_in_cli_output(rt: Runtime) -> None:
    from config.logging import register_secrets

    secret = "sk_super_secret_value_123"
    register_secrets([secret])
    record = rt.dead_letters.add(
        DeadLetter(business_id=BUSINESS, error_code="auth_invalid_credentials", reason=f"refused key {secret}")
    )
    for args in (["dlq", "list"], ["dlq", "show", record.id], ["status", "--json"], ["status"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert secret not in result.output


def test_status_shows_the_drift_of_the_last_read_back(rt: Runtime) -> None:
    target = Target(business_id=BUSINESS, store=STORE, level="item", entity_id=162, field="enabled")
    rt.ledger.record([Change(id="d-1", target=target, value=True, occurred_at_ms=1_795_000_000_002)])
    summary = {"at_ms": 1, "reason": "periodic", "drift": 3, "repaired": 2, "persistent": 1, "store_override": 0}
    rt.redis.hset(rt.keys.reconcile_last(BUSINESS), mapping=summary)
    report = json.loads(runner.invoke(app, ["status", "--json"]).output)
    (business,) = [b for b in report["businesses"] if b["business_id"] == BUSINESS]
    assert business["last_reconcile"]["drift"] == "3" and business["last_reconcile"]["repaired"] == "2"
    table = runner.invoke(app, ["status", "--business", str(BUSINESS)])
    assert "3 drift (2 repaired)" in table.output and "1 persistent" in table.output


def test_a_record_replayed_then_dropped_is_counted_down_once(rt: Runtime) -> None:
    first, _ = _dead_write(rt, "resource_not_found", 404, entity=170)
    _dead_write(rt, "resource_not_found", 404, entity=171)
    assert runner.invoke(app, ["dlq", "replay", first.id]).exit_code == 0
    assert rt.dead_letters.counts_by_code(BUSINESS) == {"resource_not_found": 1}
    dropped = runner.invoke(app, ["dlq", "drop", first.id])
    assert dropped.exit_code == 1 and "meanwhile" in dropped.output
    assert rt.dead_letters.counts_by_code(BUSINESS) == {"resource_not_found": 1}
    assert rt.dead_letters.count(BUSINESS) == 1


def test_every_listing_command_prints_json_for_scripts(rt: Runtime) -> None:
    record, _ = _dead_write(rt, "resource_not_found", 404, entity=180)
    listed = json.loads(runner.invoke(app, ["dlq", "list", "--json"]).stdout)
    assert listed["counts"] == {"resource_not_found": 1} and listed["records"][0]["id"] == record.id
    health = json.loads(runner.invoke(app, ["credentials", "status", "--json"]).stdout)
    assert any(row["business_id"] == BUSINESS for row in health)
    mappings = runner.invoke(app, ["mappings", "list", "--json"])
    assert mappings.exit_code == 0 and isinstance(json.loads(mappings.stdout), list)
    unmapped = runner.invoke(app, ["mappings", "unmapped", "--json"])
    assert unmapped.exit_code == 0 and isinstance(json.loads(unmapped.stdout), list)


def test_status_fits_an_80_column_terminal_and_keeps_the_wide_table_when_there_is_room(rt: Runtime) -> None:
    _dead_write(rt, "state_idempotency_conflict", 409, entity=191)
    narrow = runner.invoke(app, ["status"], env={"COLUMNS": "80"})
    assert narrow.exit_code == 0, narrow.output
    lines = narrow.output.splitlines()
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    assert "business 398" in narrow.output and "state_idempotency_conflict" in narrow.output
    wide = runner.invoke(app, ["status"], env={"COLUMNS": "220"})
    assert "drift (last read-back)" in wide.output and max(len(line) for line in wide.output.splitlines()) > 120


def test_status_shows_one_page_and_names_the_next(rt: Runtime) -> None:
    for b in (BUSINESS, BUSINESS + 1, BUSINESS + 2):
        target = Target(business_id=b, store=STORE, level="item", entity_id=170, field="enabled")
        rt.ledger.record([Change(id=f"page-{b}", target=target, value=True, occurred_at_ms=1_795_000_000_002)])
    first = runner.invoke(app, ["status", "--limit", "2"])
    assert first.exit_code == 0, first.output
    assert f"2 of 3; next page: menusync status --after {BUSINESS + 1} --limit 2" in first.output
    second = json.loads(runner.invoke(app, ["status", "--json", "--limit", "2", "--after", str(BUSINESS + 1)]).output)
    assert [b["business_id"] for b in second["businesses"]] == [BUSINESS + 2]
    assert second["businesses_total"] == 3 and second["next_after"] is None
    every = json.loads(runner.invoke(app, ["status", "--json", "--all", "--limit", "1"]).output)
    assert len(every["businesses"]) == 3
    refused = runner.invoke(app, ["status", "--limit", "0"])
    assert refused.exit_code == 2 and "--limit" in refused.output
