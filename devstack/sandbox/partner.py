"""The partner-API request pipeline (everything under ``/v1/partner``).

Order of checks per call: route (404) -> authentication and scope (401/403) -> scripted response ->
rate limit (429) -> Idempotency-Key and JSON body on writes (400) -> latency / hang -> downstream
fault (502) -> drop ``before`` -> idempotency replay or conflict (409) -> the operation (400/404 or
2xx, recorded for replay) -> drop ``after``. The replay lookup, the write and its recording run
without yielding to the event loop, so one key never writes twice, even when a hung call and its
retry overlap. Every call ends up in the call record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from devstack.sandbox.asgi_io import BodyTooLarge, Receive, Scope, Send, drop_connection, read_body, send_json
from devstack.sandbox.auth import authenticate, require_scope
from devstack.sandbox.calls import CallRecord
from devstack.sandbox.envelope import ApiError, error_body, new_request_id, ok_body
from devstack.sandbox.faults import FaultPlan, ScriptedResponse
from devstack.sandbox.idempotency import check_key, fingerprint
from devstack.sandbox.ops.context import OpContext
from devstack.sandbox.routes import Route, match
from devstack.sandbox.state import SandboxState
from devstack.sandbox.validate import loads, parse_json_object
from devstack.sandbox.world import Credential

log = logging.getLogger("devstack.sandbox")


class Drop(Exception):
    """Close the connection without answering."""


@dataclass
class Outcome:
    """What is being learnt about one call, for the call record."""

    business_id: int | None = None
    body: Any = None
    replayed: bool = False
    applied: bool = False
    fault: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _parse_for_record(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


async def handle_partner(state: SandboxState, scope: Scope, receive: Receive, send: Send) -> None:
    method: str = scope["method"]
    path: str = scope["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    arrived = state.now()
    request_id = new_request_id()
    outcome = Outcome()
    status: int | None = None
    code: str | None = None
    try:
        raw = await read_body(receive)
        outcome.body = _parse_for_record(raw)
        status, data = await _process(state, method, path, query, headers, raw, outcome)
        await send_json(send, status, ok_body(request_id, data), outcome.headers)
    except ApiError as exc:
        status, code = exc.status, exc.code
        await send_json(
            send,
            exc.status,
            error_body(request_id, exc.code, exc.message, exc.details),
            {**outcome.headers, **exc.headers},
        )
    except BodyTooLarge:
        status, code = 400, "request_invalid"
        await send_json(send, 400, error_body(request_id, code, "body: too large", {"field": "body"}))
    except Drop:
        status = None
        await drop_connection(send)
    except asyncio.CancelledError:
        # The server is shutting down while this call sleeps: end it without an answer.
        status = None
        with contextlib.suppress(Exception):
            await drop_connection(send)
    except Exception:
        log.exception("unexpected error in %s %s", method, path)
        status, code = 500, "internal"
        await send_json(send, 500, error_body(request_id, "internal", "unexpected error"))
    finally:
        state.calls.add(
            CallRecord(
                seq=state.calls.next_seq(),
                ts=arrived,
                business_id=outcome.business_id,
                method=method,
                path=path,
                query=query,
                idempotency_key=headers.get("idempotency-key"),
                body=outcome.body,
                status=status,
                code=code,
                request_id=request_id,
                replayed=outcome.replayed,
                applied=outcome.applied,
                fault=outcome.fault,
            )
        )


async def _process(
    state: SandboxState,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    raw: bytes,
    outcome: Outcome,
) -> tuple[int, Any]:
    found = match(method, path)
    if found is None:
        raise ApiError("resource_not_found", f"no route {method} {path}")
    route, params = found
    credential = authenticate(state.world, headers.get("authorization"))
    outcome.business_id = credential.business_id
    require_scope(credential, route.scope)

    scripted = state.faults.next_scripted(method, path, credential.business_id)
    if scripted is not None:
        outcome.fault = "script"
        return _scripted(scripted)

    _rate_limit(state, credential, route, outcome)

    key: str | None = None
    body: dict[str, Any] = {}
    if route.is_write:
        key = check_key(headers.get("idempotency-key"))
        body = parse_json_object(raw)

    plan = state.faults.plan(route.is_write)
    await _delay(plan, outcome)
    if plan.downstream:
        outcome.fault = "downstream"
        raise ApiError("downstream_unavailable", "a klikit dependency is unreachable, retry later")
    if plan.drop == "before":
        outcome.fault = "drop"
        raise Drop()

    result = _execute(state, route, params, credential, key, body, query, path, outcome)

    if plan.drop == "after":
        outcome.fault = "drop"
        raise Drop()
    return result


def _execute(
    state: SandboxState,
    route: Route,
    params: dict[str, int],
    credential: Credential,
    key: str | None,
    body: dict[str, Any],
    query: str,
    path: str,
    outcome: Outcome,
) -> tuple[int, Any]:
    """Replay, or run the operation (and record it). Never awaits."""
    now = state.now()
    business = state.world.businesses[credential.business_id]
    ctx = OpContext(state.world, business, body, dict(parse_qsl(query, keep_blank_values=True)), params, now)
    if key is None:
        return 200, route.handler(ctx)
    fp = fingerprint(route.method, path, body)
    record = state.idempotency.lookup(credential.partner_key, key, fp, now)
    if record is not None:
        outcome.replayed = True
        return record.status, record.data
    data = route.handler(ctx)
    status = route.success_status
    state.idempotency.remember(credential.partner_key, key, fp, status, data, now)
    outcome.applied = True
    return status, data


async def _delay(plan: FaultPlan, outcome: Outcome) -> None:
    if plan.latency_s > 0:
        await asyncio.sleep(plan.latency_s)
    if plan.hang_s > 0:
        outcome.fault = "hang"
        await asyncio.sleep(plan.hang_s)


def _rate_limit(state: SandboxState, credential: Credential, route: Route, outcome: Outcome) -> None:
    cfg = state.faults.config
    if cfg.rate_per_minute is None or not state.faults.applies(route.is_write):
        return
    decision = state.limiter.take(credential.partner_key, cfg.rate_per_minute, cfg.rate_burst, time.monotonic())
    if cfg.rate_limit_headers:
        outcome.headers.update(
            {
                "X-RateLimit-Limit": str(decision.limit),
                "X-RateLimit-Remaining": str(decision.remaining),
                "X-RateLimit-Reset": str(math.ceil(time.time() + decision.reset_in_s)),
            }
        )
    if not decision.allowed:
        outcome.fault = "rate_limit"
        raise ApiError(
            "rate_limit_exceeded",
            f"rate limit exceeded, retry after {decision.retry_after_s}s",
            headers={"Retry-After": str(decision.retry_after_s)},
        )


def _scripted(response: ScriptedResponse) -> tuple[int, Any]:
    if response.drop:
        raise Drop()
    if response.status >= 300:
        headers = {"Retry-After": str(response.retry_after)} if response.retry_after is not None else {}
        raise ApiError(
            response.code or "internal",
            response.message or "scripted response",
            status=response.status,
            headers=headers,
        )
    return response.status, response.data
