"""Edge cases of the client that a real klikit rarely shows on demand, against respx mocks."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
import respx
from klikit_support import SECRET, SleepRecorder
from structlog.testing import capture_logs

from klikit import (
    ClientUsageError,
    EnableUpdateRequest,
    IdempotencyConflict,
    KlikitClient,
    KlikitConnectionError,
    KlikitTimeout,
    NotEnvelopeError,
    RateLimited,
    RequestInvalid,
    RetryPolicy,
    parse_retry_after,
)

BASE = "https://klikit.test"
ENABLE_URL = f"{BASE}/v1/partner/menus/items/enable"
BODY = EnableUpdateRequest(ids=[101, 102], is_enabled=False)
HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>"

MakeClient = Callable[..., KlikitClient]


def ok(data: object = None, request_id: str = "req_ok") -> httpx.Response:
    return httpx.Response(200, json={"request_id": request_id, "data": data})


def fail(status: int, code: str, request_id: str = "req_err", headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"request_id": request_id, "error": {"code": code, "message": f"{code} happened", "details": {}}}
    return httpx.Response(status, json=body, headers=headers)


@respx.mock
def test_html_502_from_a_proxy_is_a_transient_not_envelope_and_is_retried(make_client: MakeClient) -> None:
    route = respx.patch(ENABLE_URL).mock(
        side_effect=[httpx.Response(502, text=HTML_502, headers={"content-type": "text/html"}), ok({"updated": 2})]
    )
    client = make_client(BASE)
    resp = client.enable("item", BODY, idempotency_key="k-html")
    assert resp.data == {"updated": 2}
    assert resp.attempts == 2
    assert route.call_count == 2


@respx.mock
def test_html_502_every_time_gives_up_with_not_envelope(make_client: MakeClient) -> None:
    respx.patch(ENABLE_URL).mock(return_value=httpx.Response(502, text=HTML_502, headers={"content-type": "text/html"}))
    client = make_client(BASE)
    with pytest.raises(NotEnvelopeError) as info:
        client.enable("item", BODY, idempotency_key="k-html")
    err = info.value
    assert (err.status, err.code, err.attempts) == (502, "not_envelope", 3)
    assert "text/html" in err.message


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="OK"),  # 2xx that is not JSON
        httpx.Response(200, json={"ok": True}),  # JSON without data
        httpx.Response(200, json=[1, 2]),  # not an object
        httpx.Response(500, json={"error": "boom"}),  # error not an object
        httpx.Response(503, text=""),
    ],
)
@respx.mock
def test_other_non_envelope_answers(make_client: MakeClient, response: httpx.Response) -> None:
    respx.patch(ENABLE_URL).mock(return_value=response)
    client = make_client(BASE, retry=RetryPolicy(attempts=1))
    with pytest.raises(NotEnvelopeError) as info:
        client.enable("item", BODY, idempotency_key="k")
    assert info.value.status == response.status_code
    assert info.value.attempts == 1


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ReadError("[Errno 104] Connection reset by peer"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.WriteError("[Errno 32] Broken pipe"),
    ],
)
@respx.mock
def test_refused_reset_or_dropped_connections_are_transient_and_retried(
    make_client: MakeClient, exc: Exception
) -> None:
    route = respx.patch(ENABLE_URL).mock(side_effect=[exc, exc, ok()])
    client = make_client(BASE)
    assert client.enable("item", BODY, idempotency_key="k-reset").attempts == 3
    assert route.call_count == 3

    route.reset()
    route.mock(side_effect=exc)
    with pytest.raises(KlikitConnectionError) as info:
        client.enable("item", BODY, idempotency_key="k-reset")
    assert info.value.code == "connection_error"
    assert info.value.status is None
    assert info.value.attempts == 3
    assert route.call_count == 3


@respx.mock
def test_timeouts_are_transient(make_client: MakeClient) -> None:
    route = respx.patch(ENABLE_URL).mock(side_effect=httpx.ReadTimeout("timed out"))
    client = make_client(BASE)
    with pytest.raises(KlikitTimeout) as info:
        client.enable("item", BODY, idempotency_key="k-to")
    assert (info.value.code, info.value.status, info.value.attempts) == ("timeout", None, 3)
    assert route.call_count == 3


@respx.mock
def test_every_attempt_carries_the_same_key_and_the_same_bytes(make_client: MakeClient) -> None:
    route = respx.patch(ENABLE_URL).mock(
        side_effect=[fail(502, "downstream_unavailable"), httpx.ReadError("reset"), ok()]
    )
    client = make_client(BASE)
    client.enable("item", BODY, idempotency_key="k-same")
    sent = [call.request for call in route.calls]
    assert len(sent) == 3
    assert {r.headers["idempotency-key"] for r in sent} == {"k-same"}
    assert len({r.content for r in sent}) == 1
    assert json.loads(sent[0].content) == {"ids": [101, 102], "isEnabled": False}
    assert sent[0].headers["authorization"].startswith("Basic ")
    assert sent[0].headers["content-type"] == "application/json"


@respx.mock
def test_permanent_errors_are_never_retried(make_client: MakeClient) -> None:
    route = respx.patch(ENABLE_URL).mock(return_value=fail(409, "state_idempotency_conflict", "req_409"))
    client = make_client(BASE)
    with pytest.raises(IdempotencyConflict) as info:
        client.enable("item", BODY, idempotency_key="k")
    assert info.value.attempts == 1
    assert info.value.request_id == "req_409"
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("1", 1.0),
        ("0", 0.0),
        (" 2 ", 2.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("Sun, 22 Nov 2026 10:00:30 GMT", 30.0),
        ("Sun, 22 Nov 2026 09:59:00 GMT", 0.0),  # in the past
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_retry_after_parsing(header: str | None, expected: float | None) -> None:
    now = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == expected


@respx.mock
def test_rate_limited_waits_retry_after_then_succeeds(make_client: MakeClient, sleeps: SleepRecorder) -> None:
    route = respx.patch(ENABLE_URL).mock(
        side_effect=[fail(429, "rate_limit_exceeded", headers={"Retry-After": "1"}), ok()]
    )
    client = make_client(BASE)
    resp = client.enable("item", BODY, idempotency_key="k-429")
    assert resp.attempts == 2
    assert sleeps.waits == [1.0]
    assert route.call_count == 2


@respx.mock
def test_rate_limited_with_a_long_retry_after_is_raised_at_once(make_client: MakeClient, sleeps: SleepRecorder) -> None:
    route = respx.patch(ENABLE_URL).mock(return_value=fail(429, "rate_limit_exceeded", headers={"Retry-After": "30"}))
    client = make_client(BASE)
    with pytest.raises(RateLimited) as info:
        client.enable("item", BODY, idempotency_key="k-429")
    assert info.value.retry_after == 30.0
    assert info.value.attempts == 1
    assert sleeps.waits == []
    assert route.call_count == 1


@respx.mock
def test_rate_limited_without_retry_after_backs_off(make_client: MakeClient, sleeps: SleepRecorder) -> None:
    respx.patch(ENABLE_URL).mock(return_value=fail(429, "rate_limit_exceeded"))
    client = make_client(BASE)
    with pytest.raises(RateLimited) as info:
        client.enable("item", BODY, idempotency_key="k-429")
    assert info.value.retry_after is None
    assert info.value.attempts == 3
    assert len(sleeps.waits) == 2
    assert all(0 <= w <= 0.01 for w in sleeps.waits)


@respx.mock
def test_backoff_is_full_jitter_within_bounds(make_client: MakeClient, sleeps: SleepRecorder) -> None:
    respx.patch(ENABLE_URL).mock(return_value=fail(502, "downstream_unavailable"))
    policy = RetryPolicy(attempts=6, min_backoff_s=0.1, max_backoff_s=0.4)
    client = make_client(BASE, retry=policy)
    for _ in range(20):
        with pytest.raises(Exception):  # noqa: B017
            client.enable("item", BODY, idempotency_key="k")
    assert len(sleeps.waits) == 20 * 5
    caps = [0.1, 0.2, 0.4, 0.4, 0.4]
    for i, wait in enumerate(sleeps.waits):
        assert 0 <= wait <= caps[i % 5]


@respx.mock
def test_attempts_one_disables_in_call_retries(make_client: MakeClient) -> None:
    route = respx.patch(ENABLE_URL).mock(return_value=fail(500, "internal"))
    client = make_client(BASE, retry=RetryPolicy(attempts=1))
    with pytest.raises(Exception) as info:
        client.enable("item", BODY, idempotency_key="k")
    assert getattr(info.value, "attempts", None) == 1
    assert route.call_count == 1


@respx.mock
def test_writes_are_refused_locally_without_a_valid_key(make_client: MakeClient) -> None:
    route = respx.patch(ENABLE_URL).mock(return_value=ok())
    client = make_client(BASE)
    for bad in [None, "", "   ", "k" * 65, "clé-non-ascii", "line\nbreak"]:
        with pytest.raises(ClientUsageError):
            client.send("enable_items", body=BODY, idempotency_key=bad)
    assert client.send("enable_items", body=BODY, idempotency_key="k" * 64).status == 200
    assert route.call_count == 1


@respx.mock
def test_reads_ignore_the_key_and_drop_none_params(make_client: MakeClient) -> None:
    route = respx.get(f"{BASE}/v1/partner/menus").mock(return_value=ok({"menu": {}}))
    client = make_client(BASE)
    client.send("get_menu", params={"brand_id": None, "branch_id": None}, idempotency_key="ignored")
    request = route.calls.last.request
    assert "idempotency-key" not in request.headers
    assert request.url.query == b""
    client.get_menu(5297, 1293)
    assert route.calls.last.request.url.params == httpx.QueryParams({"brand_id": "5297", "branch_id": "1293"})


def test_local_usage_errors(make_client: MakeClient) -> None:
    client = make_client(BASE)
    with pytest.raises(ClientUsageError):
        client.send("no_such_operation")
    with pytest.raises(ClientUsageError):
        client.send("set_item_visibilities", body={"visibilities": {}}, idempotency_key="k")  # no path id
    with pytest.raises(ClientUsageError):
        client.send("enable_items", body=BODY, path_id=3, idempotency_key="k")
    with pytest.raises(ClientUsageError):
        client.get_menu(brand_id=5297)
    with pytest.raises(ClientUsageError):
        client.enable("modifier_group", BODY, idempotency_key="k")  # modifier groups have no enable endpoint
    with pytest.raises(ClientUsageError):
        client.set_visibilities("store", 1, {"visibilities": {"1": True}}, idempotency_key="k")
    with pytest.raises(ClientUsageError):
        client.enable("item", {"ids": [1]}, idempotency_key="k")  # isEnabled missing
    with pytest.raises(ClientUsageError):
        client.create_item(
            {
                "title": {"en": "x"},
                "vat": 0,
                "visibilities": {"1": True},
                "prices": {"6": {"IDR": {"price": 1, "takeAwayPrice": 1}}},
            },
            idempotency_key="k",
        )


@pytest.mark.parametrize(
    "base",
    [
        "https://klikit.test",
        "https://klikit.test/",
        "https://klikit.test/v1/partner",
        "https://klikit.test/v1/partner/",
    ],
)
@respx.mock
def test_base_url_with_or_without_the_api_prefix(make_client: MakeClient, base: str) -> None:
    route = respx.get(f"{BASE}/v1/partner/providers").mock(return_value=ok([]))
    client = make_client(base)
    assert client.base_url == BASE
    client.list_providers()
    assert route.call_count == 1


def test_bad_base_url_is_refused(make_client: MakeClient) -> None:
    with pytest.raises(ClientUsageError):
        make_client("klikit.test")


@respx.mock
def test_error_envelope_fields_are_kept(make_client: MakeClient) -> None:
    body = {"request_id": "43c5ad17", "error": {"code": "request_invalid", "message": "bad", "details": {"f": "ids"}}}
    respx.patch(ENABLE_URL).mock(return_value=httpx.Response(400, json=body))
    client = make_client(BASE)
    with pytest.raises(RequestInvalid) as info:
        client.enable("item", BODY, idempotency_key="k")
    err = info.value
    assert (err.status, err.code, err.message, err.request_id, err.details) == (
        400,
        "request_invalid",
        "bad",
        "43c5ad17",
        {"f": "ids"},
    )


@respx.mock
def test_no_secret_in_reprs_errors_or_logs(make_client: MakeClient) -> None:
    import base64

    token = base64.b64encode(f"pk_398:{SECRET}".encode()).decode()
    respx.patch(ENABLE_URL).mock(
        side_effect=[fail(502, "downstream_unavailable"), fail(401, "auth_invalid_credential")]
    )
    client = make_client(BASE)
    with capture_logs() as logs, pytest.raises(Exception) as info:
        client.enable("item", BODY, idempotency_key="k-log")
    assert repr(client) == "KlikitClient(base_url='https://klikit.test', business_id=398)"
    texts = [repr(client), str(info.value), repr(info.value), repr(logs)]
    for text in texts:
        assert SECRET not in text
        assert token not in text
        assert "Basic " not in text
        assert "authorization" not in text.lower()
    assert [(e["operation"], e["attempt"], e["status"], e["code"]) for e in logs] == [
        ("enable_items", 1, 502, "downstream_unavailable"),
        ("enable_items", 2, 401, "auth_invalid_credential"),
    ]
    for event in logs:
        assert event["event"] == "klikit.call"
        assert event["idempotency_key"] == "k-log"
        assert event["request_id"] == "req_err"
        assert isinstance(event["duration_ms"], int)


@respx.mock
def test_max_elapsed_bounds_the_whole_call(make_client: MakeClient, sleeps: SleepRecorder) -> None:
    route = respx.patch(ENABLE_URL).mock(return_value=fail(429, "rate_limit_exceeded", headers={"Retry-After": "2"}))
    # the next attempt would start 2 s after the first: past the 1.5 s budget, so none is made
    client = make_client(BASE, retry=RetryPolicy(attempts=5, max_retry_after_s=2.0, max_elapsed_s=1.5))
    with pytest.raises(RateLimited) as info:
        client.enable("item", BODY, idempotency_key="k")
    assert info.value.attempts == 1
    assert route.call_count == 1
    assert sleeps.waits == []


def test_retry_policy_is_checked() -> None:
    for bad in [
        {"attempts": 0},
        {"min_backoff_s": -1},
        {"min_backoff_s": 2.0, "max_backoff_s": 1.0},
        {"max_retry_after_s": -1},
        {"max_elapsed_s": -1},
    ]:
        with pytest.raises(ValueError):
            RetryPolicy(**bad)  # type: ignore[arg-type]


def test_clients_of_many_businesses_share_one_verifying_tls_context() -> None:
    """Loading the CA bundle per client cost a worker about 20 ms for every business it met."""
    import ssl

    from config.credentials import BusinessCredential
    from klikit.client import tls_context

    contexts = []
    for business_id in (1, 2, 3):
        credential = BusinessCredential(business_id=business_id, partner_key=f"pk_{business_id}", secret_key="s" * 16)
        with KlikitClient("https://klikit.example", credential) as client:
            contexts.append(client._http._transport._pool._ssl_context)  # type: ignore[attr-defined]
    assert all(c is tls_context() for c in contexts)
    assert tls_context().verify_mode == ssl.CERT_REQUIRED and tls_context().check_hostname


@respx.mock
def test_a_menu_answer_of_another_shape_is_walked_or_refused_by_the_general_decoding(make_client: MakeClient) -> None:
    from klikit.menu_tree import EntityValues, MenuShapeError

    route = respx.get(f"{BASE}/v1/partner/menus")
    client = make_client(BASE)
    # A stray value in a child list: the typed decoding leaves it to the walk, which skips it.
    route.mock(return_value=ok({"menu": {"sections": [{"id": 7, "enabled": False, "categories": [None, {"id": 8}]}]}}))
    snapshot = client.read_menu(5297, 1293)
    assert snapshot.values("section", 7) == EntityValues(enabled=False)
    assert snapshot.values("category", 8) == EntityValues()
    route.mock(return_value=ok({"menu": {}}))
    with pytest.raises(MenuShapeError):
        client.read_menu(5297, 1293)
