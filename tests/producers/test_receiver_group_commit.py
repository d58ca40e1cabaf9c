"""The receiver's event-loop record path with group commit, over real HTTP and a real Redis.

The app runs in uvicorn on a loopback port (in this process, so its Prometheus counters can be
read); requests go concurrently from one httpx.AsyncClient. Nothing is mocked: a Redis error is
a real one (a business whose ledger key holds the wrong type), a bad field a real bad body.
Assertions hold whatever the timing: grouping is checked as "fewer calls than requests".
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from producer_helpers import API_TOKENS, BUSINESS, STANDARD_SECRETS, STORE, make_settings
from prometheus_client import REGISTRY
from standardwebhooks.webhooks import Webhook

from config.redis import Keys, connect_async
from producers.app import create_app
from producers.recorder import Recorder
from workers.changes import Change, Store, Target
from workers.ledger import Ledger

OTHER = 399  # a second known business: its calls are separate from BUSINESS's


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def credentials_file(tmp_path: Path) -> Path:
    path = tmp_path / "credentials.toml"
    path.write_text(
        "".join(f'[business.{b}]\npartner_key = "pk_{b}"\nsecret_key = "unused"\n\n' for b in (BUSINESS, OTHER))
    )
    path.chmod(0o600)
    return path


@pytest.fixture
def server(r: redis.Redis, credentials_file: Path) -> Iterator[str]:
    """The receiver in uvicorn on a free port, with a wide group window (requests sent together
    share it; correctness never depends on that)."""
    settings = make_settings(record_group_ms=20, credentials_file=credentials_file)
    port = _free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def change(entity: int, enabled: bool, at: datetime, business: int = BUSINESS, cid: str = "c") -> dict[str, Any]:
    return {
        "id": cid,
        "kind": "availability",
        "level": "item",
        "entity_ids": [entity],
        "enabled": enabled,
        "stores": [{"brand_id": STORE[0], "branch_id": STORE[1]}],
        "occurred_at": at.isoformat(),
    }


def body(*changes: dict[str, Any], business: int = BUSINESS) -> dict[str, Any]:
    return {"business_id": business, "changes": list(changes)}


AUTH = {"authorization": f"Bearer {API_TOKENS[0]}"}


async def _post_all(url: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return list(await asyncio.gather(*(client.post("/v1/changes", json=b, headers=AUTH) for b in bodies)))


def _calls() -> float:
    return REGISTRY.get_sample_value("menusync_record_calls_total") or 0.0


def _target(entity: int, business: int = BUSINESS) -> Target:
    return Target(
        business_id=business,
        store=Store(brand_id=STORE[0], branch_id=STORE[1]),
        level="item",
        entity_id=entity,
        field="enabled",
    )


def test_concurrent_changes_of_one_target_latest_wins_in_fewer_calls(server: str, ledger: Ledger) -> None:
    base = datetime.now(UTC) - timedelta(minutes=1)
    n = 24
    # Request k is newer than k - 1; the newest (k = n - 1) enables. Sent together, in shuffled order.
    bodies = [body(change(101, k == n - 1, base + timedelta(milliseconds=k), cid=f"lw-{k}")) for k in range(n)]
    order = list(reversed(range(n)))
    order[0], order[n // 2] = order[n // 2], order[0]
    before = _calls()
    answers = asyncio.run(_post_all(server, [bodies[k] for k in order]))
    assert all(a.status_code == 202 for a in answers), [a.text for a in answers]
    assert sum(a.json()["accepted"] for a in answers) + sum(a.json()["superseded"] for a in answers) == n
    value, version = ledger.desired(_target(101))  # type: ignore[misc]
    assert value is True and version.startswith(
        f"{int((base + timedelta(milliseconds=n - 1)).timestamp() * 1000):015d}"
    )
    assert _calls() - before < n  # grouped: some requests shared a record-script call


def test_a_bad_field_is_refused_alone_its_neighbours_are_recorded(server: str, ledger: Ledger) -> None:
    now = datetime.now(UTC) - timedelta(seconds=5)
    good = [body(change(100 + k, False, now, cid=f"ok-{k}")) for k in range(6)]
    bad = body(change(120, False, now, cid="bad"))
    bad["changes"][0]["enabled"] = "maybe"
    answers = asyncio.run(_post_all(server, [*good[:3], bad, *good[3:]]))
    assert answers[3].status_code == 400 and "changes[0].enabled" in answers[3].json()["detail"]
    assert [a.status_code for i, a in enumerate(answers) if i != 3] == [202] * 6
    assert ledger.desired(_target(120)) is None  # never reached the ledger
    assert all(ledger.desired(_target(100 + k))[0] is False for k in range(6))  # type: ignore[index]


def test_a_redis_error_fails_only_the_requests_of_its_call(server: str, r: redis.Redis, keys: Keys) -> None:
    r.set(keys.business(OTHER, "dver"), "not a hash")  # every record of OTHER fails inside the script (WRONGTYPE)
    now = datetime.now(UTC) - timedelta(seconds=5)
    mixed = [
        body(change(200 + k, False, now, cid=f"m-{k}"), business=OTHER if k % 3 == 0 else BUSINESS) for k in range(9)
    ]
    answers = asyncio.run(_post_all(server, mixed))
    for k, answer in enumerate(answers):
        if k % 3 == 0:
            assert answer.status_code == 503 and answer.json()["error"] == "unavailable", answer.text
        else:
            assert answer.status_code == 202, answer.text
    ledger = Ledger(r, keys)
    assert all(ledger.desired(_target(200 + k))[0] is False for k in range(9) if k % 3)  # type: ignore[index]


def test_one_window_one_failing_call_direct(r: redis.Redis, keys: Keys) -> None:
    """The same isolation without HTTP timing: both requests join one window for certain (one
    event-loop tick), the broken business's call fails, the other's is recorded."""
    import os

    r.set(keys.business(OTHER, "dver"), "not a hash")
    at = int(time.time() * 1000) - 1000
    good = [Change(id="g", target=_target(301), value=False, occurred_at_ms=at)]
    broken = [Change(id="b", target=_target(302, OTHER), value=False, occurred_at_ms=at)]
    recorder = Recorder(lambda: connect_async(os.environ["REDIS_URL"]), window_ms=0, dedupe_ttl_s=60)
    before = _calls()

    async def both() -> list[Any]:
        try:
            return await asyncio.gather(
                recorder.accept(good, source="api", actor="t"),
                recorder.accept(broken, source="api", actor="t"),
                return_exceptions=True,
            )
        finally:
            await recorder.aclose()

    ok, failed = asyncio.run(both())
    assert _calls() - before == 2  # one window, two calls (two businesses), one round trip
    assert not isinstance(ok, BaseException) and ok.accepted == 1
    assert isinstance(failed, redis.ResponseError) and "WRONGTYPE" in str(failed)
    assert Ledger(r, keys).desired(_target(301))[0] is False  # type: ignore[index]


def _signed(payload: bytes, msg_id: str) -> dict[str, str]:
    ts = int(time.time())
    sig = Webhook(STANDARD_SECRETS[0]).sign(msg_id, datetime.fromtimestamp(ts, tz=UTC), payload.decode())
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sig,
    }


def test_concurrent_webhook_deliveries_are_deduplicated_in_shared_calls(server: str, ledger: Ledger) -> None:
    """Deliveries sent together share record calls (each with its own mark), and of four copies
    of one delivery exactly one is recorded, whether they share a call or not."""
    import json

    now = datetime.now(UTC) - timedelta(seconds=5)
    payload = json.dumps(body(change(401, False, now, cid="hook-1"))).encode()
    others = [json.dumps(body(change(410 + k, False, now, cid=f"hook-o{k}"))).encode() for k in range(4)]

    async def send() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server, timeout=10) as client:
            same = [
                client.post("/webhooks/standard", content=payload, headers=_signed(payload, "msg_same"))
                for _ in range(4)
            ]
            rest = [
                client.post("/webhooks/standard", content=p, headers=_signed(p, f"msg_o{k}"))
                for k, p in enumerate(others)
            ]
            return list(await asyncio.gather(*same, *rest))

    before = _calls()
    answers = asyncio.run(send())
    assert _calls() - before < len(answers)  # grouped: some deliveries shared a record-script call
    same, rest = answers[:4], answers[4:]
    assert [a.status_code for a in same].count(202) == 1, [a.text for a in same]
    # The record itself checks and sets the delivery's mark: a concurrent copy is a duplicate, never "in progress".
    assert all(a.status_code == 200 and a.json()["duplicate"] is True for a in same if a.status_code != 202)
    assert [a.status_code for a in rest] == [202] * 4
    assert ledger.stats(BUSINESS).get("recorded", 0) >= 5
    again = asyncio.run(_resend(server, payload))
    assert again.status_code == 200 and again.json()["duplicate"] is True


async def _resend(url: str, payload: bytes) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return await client.post("/webhooks/standard", content=payload, headers=_signed(payload, "msg_same"))


def test_a_webhook_delivery_is_marked_in_its_business_slot_by_the_record_itself(
    server: str, ledger: Ledger, r: redis.Redis, keys: Keys
) -> None:
    import json

    now = datetime.now(UTC) - timedelta(seconds=5)
    payload = json.dumps(body(change(402, False, now, cid="hook-one"))).encode()
    calls = _calls()
    first = asyncio.run(_resend(server, payload))
    assert first.status_code == 202 and first.json()["accepted"] == 1
    assert _calls() - calls == 1
    # The mark shares the business's slot (one script sets it with the record); no separate claim.
    mark = keys.business(BUSINESS, "delivery", "standard", "msg_same")
    assert 0 < r.ttl(mark) <= make_settings().dedupe_ttl_s
    assert not r.exists(keys("dedupe", "standard", "msg_same"))
    again = asyncio.run(_resend(server, payload))
    assert again.status_code == 200 and again.json() == {"duplicate": True, "accepted": 0}
    assert ledger.stats(BUSINESS).get("duplicate", 0) == 0  # the copy recorded nothing, not even a duplicate


def test_a_webhook_larger_than_one_record_call_is_still_deduplicated(server: str, ledger: Ledger) -> None:
    import json

    from workers.ledger import RECORD_CHUNK

    now = datetime.now(UTC) - timedelta(seconds=5)
    large = change(1, False, now, cid="hook-large")
    large["entity_ids"] = list(range(1, RECORD_CHUNK + 2))
    payload = json.dumps(body(large)).encode()
    first = asyncio.run(_resend(server, payload))
    assert first.status_code == 202 and first.json()["accepted"] == RECORD_CHUNK + 1
    again = asyncio.run(_resend(server, payload))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert ledger.stats(BUSINESS).get("recorded", 0) == RECORD_CHUNK + 1


def test_a_change_received_while_flushes_start_late_sets_a_flag_that_outlives_the_wait(
    server: str, r: redis.Redis, keys: Keys
) -> None:
    """The flag outlives the wait, and the business waits in the sweeper's pending index until
    the sweeper would stop trusting that flag: a pass under a long queue does not claim it."""
    from workers.clock import now_ms
    from workers.queue_wait import QueueWait
    from workers.sweep_decision import attention_hold_ms

    QueueWait(r, keys).note("flush", 45_000)
    now = datetime.now(UTC) - timedelta(seconds=5)
    before = now_ms()
    (answer,) = asyncio.run(_post_all(server, [body(change(403, False, now, cid="late-hook"))]))
    assert answer.status_code == 202
    s = make_settings()
    assert r.pttl(keys.flush_scheduled(BUSINESS)) > s.lease_ttl_ms + 40_000
    hold = attention_hold_ms(
        stale_ms=int(s.sweep_stale_after_s * 1000), flush_window_ms=s.flush_window_ms, wait_ms=45_000
    )
    assert hold > 40_000
    score = r.zscore(keys.attention_of(BUSINESS, "pending"), str(BUSINESS))
    assert score is not None and score >= before + hold
