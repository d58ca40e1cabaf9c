"""Hostile input against the webhook receiver and ``POST /v1/changes``.

Every test sends only input that must be refused, then checks three things: no answer is a 5xx,
every rejection is JSON naming the error and why, and the ledger under this run's prefix is still
empty (nothing invalid was recorded).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hostile_support import (
    API_TOKEN,
    MAX_BODY,
    STANDARD_SECRET,
    STANDARD_SECRET_OLD,
    assert_rejection_says_why,
    canonical,
    dumps,
    ledger_keys,
    shopify_headers,
    square_headers,
    standard_headers,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HYPOTHESIS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)


def _bearer(token: str = API_TOKEN) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "content-type": "application/json"}


@pytest.fixture(autouse=True)
def _ledger_stays_empty(r: Any, run_prefix: str) -> Any:
    yield
    assert ledger_keys(r, run_prefix) == [], "a rejected request reached the ledger"


# -- signatures -------------------------------------------------------------------------------------


@HYPOTHESIS
@given(
    drop=st.sets(st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"]), min_size=1),
)
def test_standard_missing_headers_are_401_and_name_the_header(client: Any, drop: set[str]) -> None:
    body = dumps(canonical())
    headers = {k: v for k, v in standard_headers(body).items() if k not in drop}
    resp = client.post("/webhooks/standard", content=body, headers=headers)
    assert resp.status_code == 401
    assert_rejection_says_why(resp)
    assert "missing" in resp.json()["detail"]


@HYPOTHESIS
@given(signature=st.text(max_size=200).filter(lambda s: s.isascii()))
def test_standard_garbage_signature_is_401(client: Any, signature: str) -> None:
    body = dumps(canonical())
    headers = standard_headers(body)
    headers["webhook-signature"] = signature.replace("\r", "").replace("\n", "").replace("\x00", "") or "v1,"
    resp = client.post("/webhooks/standard", content=body, headers=headers)
    assert resp.status_code == 401
    assert_rejection_says_why(resp)


@HYPOTHESIS
@given(position=st.integers(min_value=0, max_value=10_000), flip=st.integers(min_value=1, max_value=255))
def test_standard_tampered_body_is_401(client: Any, position: int, flip: int) -> None:
    body = dumps(canonical())
    headers = standard_headers(body)
    tampered = bytearray(body)
    tampered[position % len(tampered)] ^= flip
    resp = client.post("/webhooks/standard", content=bytes(tampered), headers=headers)
    assert resp.status_code == 401
    assert_rejection_says_why(resp)


@HYPOTHESIS
@given(skew=st.one_of(st.integers(min_value=301, max_value=10**9), st.integers(min_value=-(10**9), max_value=-301)))
def test_standard_stale_or_future_timestamps_are_401_even_when_correctly_signed(client: Any, skew: int) -> None:
    body = dumps(canonical())
    ts = int(time.time()) - skew
    if ts <= 0:
        ts = 1
    resp = client.post("/webhooks/standard", content=body, headers=standard_headers(body, ts=ts))
    assert resp.status_code == 401
    assert_rejection_says_why(resp)
    assert "webhook-timestamp" in resp.json()["detail"]


@pytest.mark.parametrize("timestamp", ["", "abc", "1e9", "12.5", "-1", "9" * 40, "0x10", " "])
def test_standard_malformed_timestamp_is_401(client: Any, timestamp: str) -> None:
    body = dumps(canonical())
    headers = standard_headers(body)
    headers["webhook-timestamp"] = timestamp
    resp = client.post("/webhooks/standard", content=body, headers=headers)
    assert resp.status_code in (400, 401)
    assert_rejection_says_why(resp)


def test_signed_with_someone_elses_secret_is_401(client: Any) -> None:
    body = dumps(canonical())
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
    resp = client.post("/webhooks/standard", content=body, headers=standard_headers(body, secret=other))
    assert resp.status_code == 401
    assert_rejection_says_why(resp)


def test_replayed_delivery_with_a_stale_timestamp_is_401_and_a_fresh_replay_is_a_duplicate(
    client: Any, r: Any, run_prefix: str
) -> None:
    body = dumps(canonical(change_id="replay-1"))
    stale = int(time.time()) - 3600
    resp = client.post("/webhooks/standard", content=body, headers=standard_headers(body, msg_id="msg_r", ts=stale))
    assert resp.status_code == 401
    assert_rejection_says_why(resp)
    assert ledger_keys(r, run_prefix) == []
    # The same delivery, freshly signed (a sender's retry), is recorded once; its replay records nothing more.
    first = client.post("/webhooks/standard", content=body, headers=standard_headers(body, msg_id="msg_r"))
    assert first.status_code == 202
    recorded = {k: r.hgetall(k) for k in r.scan_iter(match=f"{run_prefix}:dver:*")}
    again = client.post(
        "/webhooks/standard", content=body, headers=standard_headers(body, msg_id="msg_r", secret=STANDARD_SECRET_OLD)
    )
    assert again.status_code == 200 and again.json()["accepted"] == 0
    assert {k: r.hgetall(k) for k in r.scan_iter(match=f"{run_prefix}:dver:*")} == recorded
    # This test recorded one valid change on purpose; clear it for the ledger check.
    for key in ledger_keys(r, run_prefix):
        r.delete(key)


def test_square_and_shopify_wrong_or_missing_signatures_are_401(client: Any) -> None:
    body = dumps({"type": "inventory.count.updated", "event_id": "e1", "data": {}})
    for headers in ({}, {"x-square-hmacsha256-signature": "AAAA"}, square_headers(body, key="other-key")):
        resp = client.post("/webhooks/square", content=body, headers=headers)
        assert resp.status_code == 401
        assert_rejection_says_why(resp)
    for headers in ({}, {"x-shopify-hmac-sha256": "AAAA"}, shopify_headers(body, secret="other-secret")):
        resp = client.post("/webhooks/shopify", content=body, headers=headers)
        assert resp.status_code == 401
        assert_rejection_says_why(resp)


# -- bodies that are signed correctly but are not valid -----------------------------------------------


@HYPOTHESIS
@given(data=st.binary(max_size=2000))
def test_signed_arbitrary_bytes_are_refused_with_a_reason(client: Any, data: bytes) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        headers = standard_headers(b"")  # cannot be signed as text: any signature will do
    else:
        headers = standard_headers(data)
    resp = client.post("/webhooks/standard", content=data, headers=headers)
    assert resp.status_code in (400, 401)
    assert_rejection_says_why(resp)


@HYPOTHESIS
@given(value=JSON_VALUES)
def test_signed_arbitrary_json_is_400_naming_a_field(client: Any, value: Any) -> None:
    body = dumps(value)
    resp = client.post("/webhooks/standard", content=body, headers=standard_headers(body))
    assert resp.status_code == 400
    assert_rejection_says_why(resp)


@HYPOTHESIS
@given(cut=st.integers(min_value=1, max_value=10_000))
def test_truncated_bodies_are_400(client: Any, cut: int) -> None:
    full = dumps(canonical())
    body = full[: cut % len(full)]
    resp = client.post("/webhooks/standard", content=body, headers=standard_headers(body))
    assert resp.status_code == 400
    assert_rejection_says_why(resp)
    resp = client.post("/v1/changes", content=body, headers=_bearer())
    assert resp.status_code == 400
    assert_rejection_says_why(resp)


def _mutations() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("negative entity id", {"entity_ids": [-1]}),
        ("zero entity id", {"entity_ids": [0]}),
        ("entity id with full-width digits", {"entity_ids": ["\uff11\uff10\uff11"]}),
        ("entity id as float", {"entity_ids": [101.5]}),
        ("no entity ids", {"entity_ids": []}),
        ("too many entity ids", {"entity_ids": list(range(1, 1002))}),
        ("unknown kind", {"kind": "price"}),
        ("unknown level", {"level": "\u0130tem"}),
        ("schedule on an item", {"kind": "schedule", "enabled": None, "available_times": {}}),
        ("visibility without map", {"kind": "visibility"}),
        ("negative brand", {"stores": [{"brand_id": -5297, "branch_id": 1293}]}),
        ("store with extra field", {"stores": [{"brand_id": 5297, "branch_id": 1293, "x": 1}]}),
        ("naive timestamp", {"occurred_at": "2026-11-22T10:00:00"}),
        ("timestamp before 1970", {"occurred_at": "1969-12-31T23:59:59Z"}),
        ("timestamp year 0", {"occurred_at": "0000-01-01T00:00:00Z"}),
        ("timestamp as number", {"occurred_at": -1}),
        (
            "until on a visibility",
            {"kind": "visibility", "enabled": None, "visibilities": {"1": True}, "until": "2099-01-01T00:00:00Z"},
        ),
        ("empty change id", {"id": ""}),
        ("change id too long", {"id": "\U0001f354" * 201}),
        ("extra field", {"price": 1}),
    ]


@pytest.mark.parametrize(("what", "change"), _mutations(), ids=[m[0] for m in _mutations()])
def test_invalid_changes_are_400_on_both_paths(client: Any, what: str, change: dict[str, Any]) -> None:
    body = canonical(**change)
    raw = dumps(body)
    for resp in (
        client.post("/webhooks/standard", content=raw, headers=standard_headers(raw, msg_id=f"msg_{hash(what)}")),
        client.post("/v1/changes", content=raw, headers=_bearer()),
    ):
        assert resp.status_code == 400, (what, resp.status_code, resp.text[:300])
        assert_rejection_says_why(resp)
        assert resp.json().get("fields") or "field" in resp.json()["detail"], resp.json()


@pytest.mark.parametrize(
    ("what", "body"),
    [
        ("negative business", {"business_id": -398}),
        ("zero business", {"business_id": 0}),
        ("business with unicode digits", {"business_id": "\u0663\u0669\u0668"}),
        ("no changes", {"changes": []}),
        ("changes not a list", {"changes": {"0": {}}}),
    ],
)
def test_invalid_batches_are_400(client: Any, what: str, body: dict[str, Any]) -> None:
    full = {**canonical(), **body}
    raw = dumps(full)
    resp = client.post("/v1/changes", content=raw, headers=_bearer())
    assert resp.status_code == 400, (what, resp.status_code, resp.text[:300])
    assert_rejection_says_why(resp)


def test_deep_json_is_400_not_a_crash(client: Any) -> None:
    for depth in (100, 1_000, 20_000):
        raw = (b"[" * depth) + (b"]" * depth)
        resp = client.post("/webhooks/standard", content=raw, headers=standard_headers(raw, msg_id=f"deep{depth}"))
        assert resp.status_code == 400, (depth, resp.status_code)
        assert_rejection_says_why(resp)
        nested: Any = canonical()
        raw2 = b'{"business_id": 398, "changes": [' + (b'{"a":' * depth) + b"1" + (b"}" * depth) + b"]}"
        resp = client.post("/v1/changes", content=raw2, headers=_bearer())
        assert resp.status_code in (400, 413), (depth, resp.status_code)
        assert_rejection_says_why(resp)
        del nested


def test_huge_json_within_the_limit_is_400(client: Any) -> None:
    wide = {"business_id": 398, "changes": [{"id": str(i)} for i in range(3000)]}
    raw = dumps(wide)
    assert len(raw) < MAX_BODY
    resp = client.post("/v1/changes", content=raw, headers=_bearer())
    assert resp.status_code == 400
    assert_rejection_says_why(resp)


def test_oversized_bodies_are_413_by_header_and_by_bytes(client: Any) -> None:
    raw = b'{"pad": "' + b"x" * (MAX_BODY + 10) + b'"}'
    for path, headers in (("/webhooks/standard", standard_headers(raw)), ("/v1/changes", _bearer())):
        resp = client.post(path, content=raw, headers=headers)
        assert resp.status_code == 413
        assert_rejection_says_why(resp)

        def chunks() -> Any:
            for _ in range(MAX_BODY // 1024 + 5):
                yield b"x" * 1024

        resp = client.post(path, content=chunks(), headers=headers)
        assert resp.status_code == 413
        assert_rejection_says_why(resp)


@pytest.mark.parametrize("length", ["abc", "1" * 30])
def test_lying_content_length_is_refused(client: Any, length: str) -> None:
    raw = dumps(canonical())
    headers = {**_bearer(), "content-length": length}
    resp = client.post("/v1/changes", content=raw, headers=headers)
    assert resp.status_code in (400, 413), resp.status_code
    assert_rejection_says_why(resp)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]
)
def test_wrong_content_types_with_invalid_bodies_are_refused(client: Any, content_type: str) -> None:
    raw = b"business_id=398&changes=all"
    headers = {**standard_headers(raw), "content-type": content_type}
    resp = client.post("/webhooks/standard", content=raw, headers=headers)
    assert resp.status_code in (400, 415)
    assert_rejection_says_why(resp)
    resp = client.post("/v1/changes", content=raw, headers={**_bearer(), "content-type": content_type})
    assert resp.status_code in (400, 415)
    assert_rejection_says_why(resp)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": ""},
        {"authorization": "Bearer"},
        {"authorization": "Bearer "},
        {"authorization": f"Basic {API_TOKEN}"},
        {"authorization": f"Bearer {API_TOKEN}x"},
        {"authorization": f"Bearer {API_TOKEN[:-1]}"},
        {"authorization": "Bearer " + "A" * 5000},
        {"authorization": f"Bearer {STANDARD_SECRET}"},
    ],
)
def test_changes_without_a_valid_token_are_401(client: Any, headers: dict[str, str]) -> None:
    resp = client.post(
        "/v1/changes", content=dumps(canonical()), headers={"content-type": "application/json", **headers}
    )
    assert resp.status_code == 401
    assert_rejection_says_why(resp)


@HYPOTHESIS
@given(
    change_id=st.text(min_size=1, max_size=200),
    webhook_id=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=300),
)
def test_unicode_ids_never_5xx(client: Any, r: Any, run_prefix: str, change_id: str, webhook_id: str) -> None:
    """Any change id text and any printable webhook id: accepted (202/200) or refused with a reason."""
    raw = dumps(canonical(change_id=change_id))
    resp = client.post("/webhooks/standard", content=raw, headers=standard_headers(raw, msg_id=webhook_id))
    assert resp.status_code < 500, resp.text[:300]
    if resp.status_code >= 400:
        assert_rejection_says_why(resp)
    for key in ledger_keys(r, run_prefix):  # valid ones may be recorded; keep the ledger check for the rest
        r.delete(key)


def test_unknown_source_and_method_say_why(client: Any) -> None:
    for resp in (
        client.post("/webhooks/\u00fcnknown", content=b"{}"),
        client.post("/webhooks/" + "x" * 5000, content=b"{}"),
        client.get("/v1/changes"),
        client.put("/webhooks/standard", content=b"{}"),
    ):
        assert_rejection_says_why(resp)


def test_error_bodies_do_not_echo_the_input(client: Any) -> None:
    marker = "ECHO-MARKER-3f9a"
    raw = dumps(canonical(entity_ids=[marker], id=marker * 50))
    resp = client.post("/v1/changes", content=raw, headers=_bearer())
    assert resp.status_code == 400
    assert marker not in resp.text
    assert json.loads(resp.text)["error"]
