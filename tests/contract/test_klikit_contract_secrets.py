"""No secret in reprs, errors or logs, over real HTTP with every logger turned up to DEBUG."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any

import pytest
from klikit_support import PARTNER_KEY, SECRET
from structlog.testing import capture_logs

from klikit import EnableUpdateRequest, InvalidCredential, KlikitClient, RetryPolicy

MakeClient = Callable[..., KlikitClient]


def forbidden_texts(secret: str) -> list[str]:
    return [secret, base64.b64encode(f"{PARTNER_KEY}:{secret}".encode()).decode(), "Basic "]


def test_success_failure_and_retry_leave_no_secret_anywhere(
    make_client: MakeClient, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx / httpcore / uvicorn too
    good = make_client(sandbox.url)
    wrong_secret = "sk_398_not_the_right_one"
    bad = make_client(sandbox.url, secret=wrong_secret, retry=RetryPolicy(attempts=1))
    sandbox.script("PATCH", "/v1/partner/menus/items/enable", [{"status": 502, "code": "downstream_unavailable"}])
    with capture_logs() as events:
        good.enable("item", EnableUpdateRequest(ids=[101], is_enabled=False), idempotency_key="k-secret")
        with pytest.raises(InvalidCredential) as info:
            bad.get_menu()
    texts = [repr(good), repr(bad), str(info.value), repr(info.value), repr(events), caplog.text]
    for text in texts:
        for secret in [*forbidden_texts(SECRET), *forbidden_texts(wrong_secret)]:
            assert secret not in text
        assert "authorization" not in text.lower()
    assert repr(good) == f"KlikitClient(base_url={sandbox.url!r}, business_id=398)"
    logged = [(e["operation"], e["attempt"], e["status"], e["code"]) for e in events]
    assert logged == [
        ("enable_items", 1, 502, "downstream_unavailable"),
        ("enable_items", 2, 200, None),
        ("get_menu", 1, 401, "auth_invalid_credential"),
    ]
    request_ids = [c["request_id"] for c in sandbox.calls()]
    assert [e["request_id"] for e in events] == request_ids
    for event in events:
        assert set(event) >= {"operation", "status", "code", "request_id", "idempotency_key", "attempt", "duration_ms"}
