"""Failure paths end to end: what klikit will never take lands in the dead-letter store, with why."""

from __future__ import annotations

import json
from typing import Any

from pipeline_support import BUSINESS, STORES, item_change, wait_for

from config.credentials import Credentials
from workers.actors import flush_business
from workers.changes import Change, Target
from workers.credential_block import auth_block_key


def test_an_unreadable_message_is_dead_lettered_at_once_without_retries(pipeline: Any) -> None:
    flush_business.send("not-a-business")
    wait_for(lambda: pipeline.rt.dead_letters.count() == 1, what="the dead letter")
    [record] = pipeline.rt.dead_letters.list()
    assert record.kind == "message"
    assert record.error_code == "unreadable_payload"
    assert record.actor == "flush_business"
    assert "business id must be a positive integer" in record.reason
    assert record.attempts == 1


def test_changes_for_a_business_without_credentials_are_dead_lettered_with_the_reason(pipeline: Any) -> None:
    target = Target(business_id=777, store=None, level="item", entity_id=5, field="enabled")
    pipeline.submit([Change(id="x1", target=target, value=False, occurred_at_ms=1)])
    wait_for(lambda: pipeline.rt.dead_letters.count(777) == 1, what="the dead letter")
    [record] = pipeline.rt.dead_letters.list(777)
    assert record.error_code == "credentials_missing"
    assert "no klikit credentials configured for business 777" in record.reason
    assert record.targets[0][0] == target.key()
    assert pipeline.rt.ledger.pending_count(777) == 0


def test_exhausted_transient_retries_are_dead_lettered_with_attempts_and_times(make_pipeline: Any) -> None:
    p = make_pipeline(retry_max_age_s=0.4, klikit_incall_attempts=1)
    p.sandbox.set_faults(downstream_rate=1.0, writes_only=True)
    p.submit([item_change(120, enabled=False, at_ms=1_795_001_000_000)])
    wait_for(lambda: p.rt.dead_letters.count() == 1, timeout=20, what="the dead letter")
    [record] = p.rt.dead_letters.list()
    assert record.error_code == "downstream_unavailable"
    assert record.http_status == 502
    assert record.attempts >= 2
    assert record.last_failure_ms > record.first_failure_ms
    assert record.request_id and record.idempotency_key
    assert p.rt.ledger.pending_count(BUSINESS) == 0


def test_an_auth_refusal_dead_letters_and_stops_the_business_until_cleared(make_pipeline: Any) -> None:
    p = make_pipeline()
    revoked = Credentials.from_mapping(
        {"business": {str(BUSINESS): {"partner_key": "pk_398_revoked", "secret_key": "sk_revoked"}}}
    )
    p.rt.use_credentials(revoked)
    p.submit([item_change(121, enabled=False, at_ms=1_795_001_100_000)])
    wait_for(lambda: p.rt.dead_letters.count() == 1, what="the dead letter")
    assert p.rt.dead_letters.list()[0].error_code == "auth_revoked"
    assert p.rt.redis.get(auth_block_key(p.rt, BUSINESS)) == "auth_revoked"
    # A further change is kept, not sent, while the credential is blocked.
    p.submit([item_change(122, enabled=False, at_ms=1_795_001_100_001)])
    wait_for(lambda: not p.rt.redis.exists(p.rt.keys.flush_scheduled(BUSINESS)), what="the flush to stop")
    assert p.rt.ledger.pending_count(BUSINESS) == 1
    assert [c for c in p.writes() if c["body"].get("ids") == [122]] == []


def test_a_permanently_refused_publish_is_dead_lettered_and_its_state_cleared(pipeline: Any) -> None:
    pipeline.sandbox.script("POST", "/v1/partner/menus/publish", [{"status": 400, "code": "request_invalid"}])
    pipeline.submit([item_change(123, enabled=False, at_ms=1_795_001_200_000)])
    wait_for(lambda: pipeline.rt.dead_letters.count() == 1, what="the dead letter")
    pipeline.wait_settled()
    [record] = pipeline.rt.dead_letters.list()
    assert record.operation == "publish_menu" and record.error_code == "request_invalid"
    assert record.body["providerIDs"] == [1, 6]


def test_dead_letters_and_logs_carry_no_secret(pipeline: Any, capsys: Any) -> None:
    secret = pipeline.sandbox.credentials(BUSINESS)[1]
    pipeline.sandbox.script(
        "PATCH", "/v1/partner/menus/items/enable", [{"status": 409, "code": "state_idempotency_conflict"}]
    )
    pipeline.submit([item_change(124, enabled=False, at_ms=1_795_001_300_000)])
    wait_for(lambda: pipeline.rt.dead_letters.count() == 1, what="the dead letter")
    pipeline.wait_settled()
    stored = json.dumps([r.model_dump() for r in pipeline.rt.dead_letters.list()])
    captured = capsys.readouterr()
    for text in (stored, captured.out, captured.err):
        assert secret not in text
        assert "Basic " not in text


def test_a_failure_between_a_write_and_its_publish_mark_still_publishes_the_store(
    make_pipeline: Any, monkeypatch: Any
) -> None:
    """Found by the SIGKILL test: a flush that died after klikit applied a write but before it marked
    the store for publishing left the ledger settled and the store's published menu stale."""
    import redis

    from workers.publish_state import PublishTracker

    real_touch = PublishTracker.touch
    failed: list[int] = []

    def touch_failing_once(self: PublishTracker, store_keys: Any, quiet_ms: int) -> bool:
        if not failed:
            failed.append(1)
            raise redis.ConnectionError("injected: Redis went away right after the write")
        return real_touch(self, store_keys, quiet_ms)

    monkeypatch.setattr(PublishTracker, "touch", touch_failing_once)
    p = make_pipeline(publish_quiet_ms=200)
    p.submit([item_change(101, enabled=False, at_ms=1_795_001_500_000, store=STORES[1])])
    wait_for(lambda: p.publishes(), timeout=20, what="the store's publish")
    assert failed, "the injected failure did not happen"
    assert p.published_item_enabled(STORES[1], 101) is False


def test_a_flush_message_that_cannot_be_sent_leaves_no_scheduled_flag(r: Any) -> None:
    """Else every nudge would see the flag and send nothing until it expires: a change stranded."""
    import pytest

    from workers.actors import nudge
    from workers.flush import send_scheduled_flush
    from workers.runtime import runtime

    rt = runtime()
    flag = rt.keys.flush_scheduled(BUSINESS)

    def broker_down(business_id: int) -> None:
        raise ConnectionError("broker unreachable")

    rt.redis.set(flag, 1, px=60_000)
    with pytest.raises(ConnectionError):
        send_scheduled_flush(rt, BUSINESS, broker_down)
    assert not r.exists(flag)
    sent: list[int] = []
    rt.redis.set(flag, 1, px=60_000)
    send_scheduled_flush(rt, BUSINESS, sent.append)
    assert sent == [BUSINESS] and r.exists(flag)
    r.delete(flag)
    assert nudge([BUSINESS]) == 1 and r.exists(flag)  # the real send: the flag stays with its message


def test_a_nudge_whose_broker_is_down_strands_no_business_behind_the_first_failure(r: Any) -> None:
    """Each business's send is tried: none keeps a flag that no message will clear."""
    import pytest
    from dramatiq.brokers.redis import RedisBroker

    from workers.actors import nudge
    from workers.runtime import runtime

    rt = runtime()
    businesses = [BUSINESS, BUSINESS + 1, BUSINESS + 2]
    down = RedisBroker(url="redis://127.0.0.1:1/0")  # nothing listens there: every send fails
    real = flush_business.broker
    flush_business.broker = down
    try:
        with pytest.raises(Exception, match=r"(?i)connect"):
            nudge(businesses)
    finally:
        flush_business.broker = real
        down.close()
    assert [b for b in businesses if r.exists(rt.keys.flush_scheduled(b))] == []
