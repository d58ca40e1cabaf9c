"""``menusync history`` and the history entries of a command-line replay (typer's CliRunner, real Redis)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.app import app
from workers.changes import Change, Store, Target
from workers.deadletters import DeadLetter
from workers.runtime import Runtime, runtime
from workers.submit import submit_changes

BUSINESS = 398
STORE = Store(brand_id=5297, branch_id=1293)
runner = CliRunner()


@pytest.fixture
def rt(r: Any) -> Iterator[Runtime]:
    import workers.actors

    workers.actors.broker.flush_all()
    yield runtime()
    workers.actors.broker.flush_all()


def _change(entity: int, cid: str) -> Change:
    target = Target(business_id=BUSINESS, store=STORE, level="item", entity_id=entity, field="enabled")
    return Change(id=cid, target=target, value=False, occurred_at_ms=int(time.time() * 1000))


def test_history_command_filters_by_target_and_prints_json(rt: Runtime) -> None:
    submit_changes([_change(101, "cli-a"), _change(102, "cli-b")], source="api", actor="pos-bridge")
    out = runner.invoke(app, ["history", str(BUSINESS), "--target", "item:101@5297:1293", "--since", "1h", "--json"])
    assert out.exit_code == 0, out.output
    entries = [json.loads(line) for line in out.output.splitlines()]
    assert [(e["change_id"], e["outcome"], e["actor"]) for e in entries] == [("cli-a", "recorded", "pos-bridge")]
    table = runner.invoke(app, ["history", str(BUSINESS)])
    assert table.exit_code == 0 and "cli-b" in table.output
    bad = runner.invoke(app, ["history", str(BUSINESS), "--target", "pizza"])
    assert bad.exit_code == 2 and "--target" in bad.output


def test_a_command_line_replay_is_in_the_history(rt: Runtime) -> None:
    change = _change(150, "cli-c")
    (version,) = rt.ledger.record([change])
    assert version is not None
    record = rt.dead_letters.add(
        DeadLetter(
            business_id=BUSINESS,
            targets=[(change.target.key(), version)],
            error_code="state_idempotency_conflict",
            http_status=409,
        )
    )
    rt.ledger.mark_dead(BUSINESS, [(change.target.key(), version)], record.id)
    assert runner.invoke(app, ["dlq", "replay", record.id]).exit_code == 2
    assert runner.invoke(app, ["dlq", "replay", record.id, "--new-key"]).exit_code == 0
    out = runner.invoke(app, ["history", str(BUSINESS), "--outcome", "replayed", "--json"])
    (entry,) = [json.loads(line) for line in out.output.splitlines()]
    assert entry["source"] == "cli" and record.id in entry["detail"] and "new key" in entry["detail"]
