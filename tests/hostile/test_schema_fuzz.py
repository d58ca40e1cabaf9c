"""Schemathesis against the receiver's own OpenAPI schema: no input makes it answer 5xx.

Every operation of the schema is called with generated path parameters and bodies (``/v1/changes``
with a valid bearer token, so that generated bodies get past authentication). A 4xx answer must
say why (``{"error", "detail"}``). Generated bodies that happen to be valid are accepted; the
ledger is emptied after each example.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hostile_support import API_TOKEN, hostile_settings, ledger_keys
from hypothesis import HealthCheck, settings

from producers.app import create_app

APP = create_app(hostile_settings())
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_5xx(case: Any, r: Any, run_prefix: str) -> None:
    resp = case.call(headers={"authorization": f"Bearer {API_TOKEN}"})
    assert resp.status_code < 500, (case.method, case.path, resp.status_code, resp.text[:300])
    if resp.status_code >= 400:
        body = resp.json()
        assert body.get("error") and body.get("detail"), body
    for key in ledger_keys(r, run_prefix):
        r.delete(key)
