"""Read-back reconciliation end to end: real Redis, real Dramatiq workers, the sandbox over HTTP.

Drift is injected with the sandbox's tamper route (an edit in klikit's own tools, behind
menusync's back) and must be repaired: after the next publish, and by the periodic read-back.
"""

from __future__ import annotations

from typing import Any

from pipeline_support import BUSINESS, STORES, item_change, wait_for

import workers.actors
from workers.reconcile import DRIFT_PERSISTENT, last_reconcile, reconcile_business_now

STORE = STORES[0]
BASE = 1_795_100_000_000


def _published(p: Any, item: int, store: Any = STORE) -> Any:
    return p.published_item_enabled(store, item)


def _reads(p: Any) -> list[dict[str, Any]]:
    return [c for c in p.sandbox.calls(business_id=BUSINESS) if c["method"] == "GET" and c["path"].endswith("/menus")]


def _settle_with_101_disabled(p: Any) -> None:
    p.submit([item_change(101, False, BASE, store=STORE)])
    p.wait_settled()
    wait_for(lambda: last_reconcile(p.rt, BUSINESS).get("reason") == "publish", timeout=10, what="first read-back")
    assert _published(p, 101) is False


def test_every_publish_is_read_back_and_a_matching_menu_is_left_alone(pipeline: Any) -> None:
    _settle_with_101_disabled(pipeline)
    summary = last_reconcile(pipeline.rt, BUSINESS)
    assert summary["stores_read"] == "1" and summary["drift"] == "0" and int(summary["matched"]) >= 1
    assert len(_reads(pipeline)) == 1
    writes = len(pipeline.writes())
    assert writes == 1


def test_drift_injected_before_a_publish_is_repaired_after_it(pipeline: Any) -> None:
    p = pipeline
    _settle_with_101_disabled(p)
    # Someone enables 101 in klikit's tools; the next publish (for another change) ships it.
    p.sandbox.tamper(BUSINESS, "item", 101, "enabled", True, store=(STORE.brand_id, STORE.branch_id))
    p.submit([item_change(102, False, BASE + 1, store=STORE)])
    wait_for(lambda: _published(p, 102) is False, timeout=15, what="the second publish")
    wait_for(lambda: _published(p, 101) is False, timeout=15, what="the drift to be repaired and published")
    p.wait_settled()
    repairs = [c for c in p.writes() if c["path"].endswith("/items/enable") and 101 in (c["body"] or {}).get("ids", [])]
    assert len(repairs) == 2, "101 was written once, then once more to repair it"
    assert repairs[0]["idempotency_key"] != repairs[1]["idempotency_key"]


def test_the_periodic_read_back_repairs_an_edit_made_after_the_publish(pipeline: Any) -> None:
    p = pipeline
    _settle_with_101_disabled(p)
    p.sandbox.tamper(BUSINESS, "item", 101, "enabled", True, store=(STORE.brand_id, STORE.branch_id), republish=True)
    assert _published(p, 101) is True
    workers.actors.send_reconcile(BUSINESS, None, "periodic")
    wait_for(lambda: _published(p, 101) is False, timeout=15, what="the periodic read-back to repair 101")
    p.wait_settled()
    read_queries = " ".join(c["query"] for c in _reads(p))
    assert all(f"branch_id={s.branch_id}" in read_queries for s in STORES), read_queries


def test_drift_that_persists_after_every_repair_is_dead_lettered_once_not_looped(make_pipeline: Any) -> None:
    p = make_pipeline(reconcile_max_repairs=2)
    _settle_with_101_disabled(p)
    send_flush = workers.actors.send_flush
    for _ in range(4):
        # Someone in klikit's tools turns 101 back on right after each repair.
        p.sandbox.tamper(
            BUSINESS, "item", 101, "enabled", True, store=(STORE.brand_id, STORE.branch_id), republish=True
        )
        outcome = reconcile_business_now(p.rt, BUSINESS, [STORE.key()], reason="test", send_flush=send_flush)
        p.wait_settled()
    records = [d for d in p.rt.dead_letters.list(BUSINESS) if d.error_code == DRIFT_PERSISTENT]
    assert len(records) == 1
    assert records[0].body[records[0].targets[0][0]]["published"] == {STORE.key(): True}
    assert outcome.persistent == [] and outcome.repended == [], "a dead-lettered target is left alone"
    writes = len(p.writes())
    reconcile_business_now(p.rt, BUSINESS, [STORE.key()], reason="test", send_flush=send_flush)
    assert len(p.writes()) == writes
    assert _published(p, 101) is True


def test_reads_honour_429_and_a_store_klikit_does_not_know_is_reported(pipeline: Any) -> None:
    p = pipeline
    _settle_with_101_disabled(p)
    p.sandbox.tamper(BUSINESS, "item", 101, "enabled", True, store=(STORE.brand_id, STORE.branch_id), republish=True)
    p.sandbox.script("GET", "/v1/partner/menus", [{"status": 429, "code": "rate_limit_exceeded", "retry_after": 1}])
    reads_before = len(_reads(p))
    workers.actors.send_reconcile(BUSINESS, ["9999:9999", STORE.key()], "periodic")
    wait_for(lambda: _published(p, 101) is False, timeout=20, what="the read-back to wait out the 429 and repair")
    reads = _reads(p)[reads_before:]
    assert reads[0]["status"] == 429
    waited = reads[1]["ts"] - reads[0]["ts"]
    assert waited >= 0.9, f"the read after a 429 with Retry-After 1 came {waited:.2f}s later"
    wait_for(
        lambda: "9999:9999" in last_reconcile(p.rt, BUSINESS).get("unknown_stores", ""),
        timeout=10,
        what="the unknown store to be reported",
    )


def test_plan_shows_desired_against_published_and_writes_nothing(pipeline: Any) -> None:
    import json

    from typer.testing import CliRunner

    from cli.app import app

    p = pipeline
    _settle_with_101_disabled(p)
    p.sandbox.tamper(BUSINESS, "item", 101, "enabled", True, store=(STORE.brand_id, STORE.branch_id), republish=True)
    writes, publishes = len(p.writes()), len(p.publishes())
    result = CliRunner().invoke(app, ["plan", str(BUSINESS), "--store", STORE.key(), "--json"])
    assert result.exit_code == 1, result.output
    # In-process, log lines share stdout (the installed command sends them to stderr).
    plan = json.loads(result.stdout[result.stdout.index("{\n") :])
    (row,) = [r for r in plan["rows"] if r["target"].endswith("|item|101|enabled")]
    assert row["verdict"] == "drift" and row["desired"] is False and row["published"] == {STORE.key(): True}
    assert plan["counts"] == {"drift": 1}
    assert (len(p.writes()), len(p.publishes())) == (writes, publishes)
    assert p.rt.ledger.pending_count(BUSINESS) == 0
    clean = CliRunner().invoke(app, ["plan", str(BUSINESS), "--store", STORES[1].key()])
    assert clean.exit_code == 0, clean.output
    assert "no targets" in clean.output or "ok" in clean.output


def test_drift_on_one_channel_repairs_that_channel_only(pipeline: Any) -> None:
    from workers.changes import Change, Target

    p = pipeline
    target = Target(business_id=BUSINESS, store=STORE, level="item", entity_id=112, field="visibilities", provider=6)
    p.submit([Change(id="hide-112-on-6", target=target, value=False, occurred_at_ms=BASE)])
    p.wait_settled()

    def shown() -> dict[str, Any]:
        return dict(p.sandbox.state(BUSINESS)["effective_published"][STORE.key()]["item"]["112"]["visibilities"])

    wait_for(lambda: shown().get("6") is False, timeout=10, what="hide on 6 published")
    # In klikit's tools someone shows 112 on 6 again and hides it on klikit's own marketplace (1).
    p.sandbox.tamper(
        BUSINESS,
        "item",
        112,
        "visibilities",
        {"1": False, "6": True},
        store=(STORE.brand_id, STORE.branch_id),
        republish=True,
    )
    workers.actors.send_reconcile(BUSINESS, [STORE.key()], "periodic")
    wait_for(lambda: shown().get("6") is False, timeout=15, what="channel 6 repaired")
    p.wait_settled()
    # menusync holds channel 6 only: channel 1 stays as klikit's tools left it.
    assert shown() == {"1": False, "6": False}
    summary = last_reconcile(p.rt, BUSINESS)
    assert summary["reason"] in ("periodic", "publish")


def test_a_read_back_while_a_publish_is_pending_hands_its_stores_to_that_publish(make_pipeline: Any) -> None:
    p = make_pipeline(start=False)  # no worker: nothing else touches the publish state
    keys = p.rt.keys
    p.rt.redis.hset(keys.business(BUSINESS, "publish"), mapping={"gen": 7, "scheduled": 1})
    reads_before = len(_reads(p))
    outcome = reconcile_business_now(p.rt, BUSINESS, [STORE.key()], reason="publish", send_flush=lambda b: None)
    assert outcome.skipped == "publish_pending" and outcome.busy
    assert len(_reads(p)) == reads_before, "no read whose answer would be discarded"
    assert STORE.key() in p.rt.redis.smembers(keys.publish_stores(BUSINESS))


def test_a_store_never_published_is_one_absent_line_per_read_back_not_one_per_target(pipeline: Any) -> None:
    """Its targets are all absent from the store's menu; the log names how many and a few of them."""
    from structlog.testing import capture_logs

    from workers.reconcile import LOG_SAMPLE

    p = pipeline
    never = STORES[1]
    changes = [item_change(101 + i, True, BASE + i, store=never) for i in range(12)]
    versions = p.rt.ledger.record(changes)
    p.rt.ledger.mark_applied(BUSINESS, [(c.target.key(), v) for c, v in zip(changes, versions, strict=True)])
    with capture_logs() as logs:
        outcome = reconcile_business_now(p.rt, BUSINESS, [never.key()], reason="periodic", send_flush=lambda b: None)
    absent = [line for line in logs if line["event"] == "read-back: absent"]
    assert len(outcome.report.findings) == 12
    assert len(absent) == 1, [line["event"] for line in logs]
    assert absent[0]["count"] == 12 and absent[0]["stores"] == [never.key()]
    assert [s["target"] for s in absent[0]["sample"]] == sorted(c.target.key() for c in changes)[:LOG_SAMPLE]
