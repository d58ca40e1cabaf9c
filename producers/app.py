"""The webhook receiver and the canonical API (ASGI, FastAPI).

Routes::

    POST /webhooks/square     Square (x-square-hmacsha256-signature), inventory.count.updated
    POST /webhooks/shopify    Shopify (X-Shopify-Hmac-Sha256), inventory_levels/update
    POST /webhooks/standard   Standard Webhooks (webhook-id / -timestamp / -signature), canonical body
    POST /v1/changes          canonical body, ``Authorization: Bearer <token>``
    GET  /healthz             the process answers
    GET  /readyz              Redis answers (200) or not (503)
    GET  /metrics             Prometheus exposition
    /v1/operations/...        store and menu operations (``producers.operations_api``)
    GET  /v1/businesses/{id}/history, /console/...   the change history and the operator console
                              (``producers.console``)

Each request: body read with a size cap (Content-Length checked first, then the bytes read),
signature verified on the raw bytes, JSON parsed and checked. ``/v1/changes`` and Standard
Webhooks then stay on the event loop (``producers.recorder``): the body is checked and expanded
there when it is small (a large one, or one that needs klikit's channel list, on a worker
thread), and the record joins the group commit (one record-script call per business per
``MENUSYNC_RECORD_GROUP_MS`` window; a webhook's call of its own, which checks and sets the
delivery's duplicate mark in the same step: ``producers.dedupe``). Square and Shopify do their Redis work in one
worker-thread hop: one pipelined round trip for the duplicate claim and the id lookups, the
ledger record (``producers.intake.accept``), and one pipelined round trip that marks the event
done and keeps any unmapped part for review.

A visibility change names the channels (klikit provider ids) it shows or hides the entities on;
the other channels stay as they are. A provider klikit does not list for the business is refused
with 400 naming it (``workers.providers``; that lookup runs on the worker thread, before the
duplicate claim, as it may read Redis or klikit).

Status codes: 202 accepted (body ``{"accepted": n, "superseded": m, ...}``), 200 duplicate or an
event type that carries no stock information, 400 malformed or schema-invalid (naming the field),
401 bad or missing signature / stale timestamp / missing token, 404 unknown source, 409 the same
event is being recorded right now (retry later), 413 body too large, 503 Redis unavailable (or fewer
replicas than ``MENUSYNC_REDIS_MIN_REPLICAS_ACK`` confirmed the record, or a ``replace`` visibility
change while klikit's channel list cannot be read).
Error bodies are ``{"error": code, "detail": message}`` (plus ``fields`` for schema errors) and
never contain a secret.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis
import structlog
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from config.logging import register_secrets
from config.redis import Keys, connect_async
from config.settings import Settings
from producers.access import Grant, KnownBusinesses, match_token, parse_grants
from producers.canonical import TooManyTargets, count_targets, expand_batch, read_batch
from producers.console import mount_console
from producers.dedupe import claim_outcome, dedupe_key, delivery_key, queue_claim, queue_done
from producers.intake import accept
from producers.mapping import Mappings, decode_entities, decode_stores
from producers.metrics import UNMAPPED_EVENTS, WEBHOOK_EVENTS, webhook_event
from producers.operations_api import operations_router
from producers.recorder import Recorder
from producers.review import queue_review
from producers.runtime import shared_client
from producers.signatures import (
    SignatureError,
    malformed_standard_secrets,
    verify_shopify,
    verify_square,
    verify_standard,
)
from producers.timers import Timers
from producers.webhooks import (
    SHOPIFY_INVENTORY_TOPIC,
    SQUARE_INVENTORY_EVENT,
    PayloadError,
    SquareInventoryEvent,
    StockLevel,
    build_changes,
    parse_shopify,
    parse_square,
    shopify_levels,
    square_levels,
)
from workers.changes import Change, ChangeBatch
from workers.ledger import RECORD_CHUNK
from workers.providers import ProvidersUnavailable
from workers.runtime import Runtime
from workers.submit import SubmitResult

log = structlog.get_logger("producers.app")

SOURCES = ("square", "shopify", "standard")
JSON = "application/json"
#: Bodies up to this size with up to this many targets are parsed and expanded on the event loop.
INLINE_PARSE_BYTES = 16 * 1024
INLINE_EXPAND_TARGETS = 200


class Rejection(Exception):
    def __init__(self, status: int, error: str, detail: Any, **extra: Any) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail
        self.extra = extra


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(content=json.dumps(body, separators=(",", ":")).encode(), status_code=status, media_type=JSON)


def _error(status: int, error: str, detail: Any, **extra: Any) -> Response:
    return _json(status, {"error": error, "detail": detail, **extra})


def _bad_payload(exc: PayloadError) -> Rejection:
    return Rejection(400, "invalid_body", str(exc), fields=exc.errors)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than ``limit`` bytes (declared or actually sent)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise Rejection(400, "invalid_request", "Content-Length is not a number") from None
        if size > limit:
            raise Rejection(413, "body_too_large", f"body of {size} bytes is over the limit of {limit} bytes")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise Rejection(413, "body_too_large", f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class Receiver:
    """Everything a request needs, built once per app: settings, secrets, the Redis pool."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None, recorder: Recorder | None = None) -> None:
        self.settings = settings
        self.client = client or shared_client(settings.redis_url)
        self.keys = Keys(settings.prefix)
        self.mappings = Mappings(self.client, self.keys)
        self.timers = Timers(self.client, self.keys)
        self.square_keys = [s.get_secret_value() for s in settings.secret_list("square_signature_keys")]
        self.shopify_secrets = [s.get_secret_value() for s in settings.secret_list("shopify_webhook_secrets")]
        standard = [s.get_secret_value() for s in settings.secret_list("standard_webhook_secrets")]
        self.standard_grants = parse_grants(standard, "Standard Webhooks secret")
        self.standard_secrets = [g.secret for g in self.standard_grants]
        self.api_grants = parse_grants([s.get_secret_value() for s in settings.secret_list("api_tokens")], "API token")
        self.known = KnownBusinesses(settings.credentials_file)
        register_secrets([*self.square_keys, *self.shopify_secrets, *self.standard_secrets, *standard])
        register_secrets(g.secret for g in self.api_grants)
        for position in malformed_standard_secrets(self.standard_secrets):
            log.warning(
                "a Standard Webhooks secret is malformed: expected whsec_<base64 key>; deliveries signed "
                "with it will be refused",
                setting="MENUSYNC_STANDARD_WEBHOOK_SECRETS",
                position=position,
            )
        self.runtime = Runtime(settings)
        """Credentials and klikit access for the channel (provider) list of visibility changes."""
        self.recorder = recorder or Recorder(
            lambda: connect_async(settings.redis_url),
            window_ms=settings.record_group_ms,
            dedupe_ttl_s=settings.dedupe_ttl_s,
        )
        """The event-loop record path of ``/v1/changes`` and Standard Webhooks (group commit)."""

    def __repr__(self) -> str:
        return f"Receiver({self.keys!r})"

    # -- work done on a worker thread (blocking Redis calls) -----------------------------------

    def _recorded(
        self,
        source: str,
        key: str,
        changes: list[Change],
        unmapped: list[str],
        raw: bytes,
        event_id: str,
        actor: str = "",
    ):
        try:
            result = accept(changes, timers=self.timers, producer=source, actor=actor)
        except BaseException:
            with contextlib.suppress(redis.RedisError):
                self.client.delete(key)  # let the sender's retry through at once
            raise
        pipe = self.client.pipeline(transaction=False)
        queue_done(pipe, key, self.settings.dedupe_ttl_s)
        if unmapped:
            queue_review(
                pipe, self.keys, kind="unmapped", source=source, event_id=event_id, reason="; ".join(unmapped), raw=raw
            )
        pipe.execute()
        if unmapped:
            UNMAPPED_EVENTS.labels(source).inc()
        return result

    def record_pos(
        self, source: str, event_id: str, levels: list[StockLevel], raw: bytes, dedupe_id: str | None = None
    ) -> tuple[int, dict]:
        key = dedupe_key(self.keys, source, dedupe_id or event_id)
        items = list(dict.fromkeys(level.item_id for level in levels))
        locations = list(dict.fromkeys(level.location_id for level in levels))
        pipe = self.client.pipeline(transaction=False)
        queue_claim(pipe, key)
        pipe.hmget(self.mappings.entity_key(source), items)
        pipe.hmget(self.mappings.location_key(source), locations)
        set_reply, get_reply, raw_entities, raw_stores = pipe.execute()
        claim = claim_outcome(set_reply, get_reply)
        if claim != "claimed":
            return self._not_claimed(source, event_id, claim)
        entities = {i: decode_entities(v) for i, v in zip(items, raw_entities, strict=True)}
        stores = {loc: decode_stores(v) for loc, v in zip(locations, raw_stores, strict=True)}
        change_id = f"{source}:{event_id}"[:200]
        built = build_changes(change_id, levels, entities, stores, self.settings.stock_threshold)
        result = self._recorded(source, key, built.changes, built.unmapped, raw, event_id)
        outcome = "unmapped" if built.unmapped and not built.changes else "accepted"
        WEBHOOK_EVENTS.labels(source, outcome).inc()
        answer = {"accepted": result.accepted, "superseded": result.superseded, "duplicate": result.duplicate}
        return 202, {**answer, "unmapped": len(built.unmapped)}

    def authorize(self, grants: list[Grant], business_id: int) -> None:
        """Refuse (403) a change for a business no matching grant covers, and (422) one for a business
        menusync has no klikit credentials for: it could never be written."""
        if not any(g.allows(business_id) for g in grants):
            names = ", ".join(g.name for g in grants)
            raise Rejection(403, "forbidden", f"{names} may not write business {business_id}", field="business_id")
        if not self.known.knows(business_id):
            raise Rejection(
                422,
                "unknown_business",
                f"menusync has no klikit credentials for business {business_id}",
                field="business_id",
            )

    def parse_changes(self, body: bytes, grants: list[Grant]) -> list[Change]:
        """Validate, authorize and expand a canonical body (CPU work, and for visibility changes the
        business's channel list: called on a worker thread). Raises :class:`Rejection`: 400 naming the
        field, 413 past the target cap, 403/422 for the business, 503 when the channels cannot be read."""
        return self.expand(self.read_authorized(body, grants))

    async def parse_changes_async(self, body: bytes, grants: list[Grant]) -> list[Change]:
        """:meth:`parse_changes` from the event loop: inline for a small body that needs no channel
        list (a thread hop costs more than the parse), else on a worker thread (a large body's parse
        would stall every other request; the channel list may read klikit)."""
        if len(body) > INLINE_PARSE_BYTES:
            return await run_in_threadpool(self.parse_changes, body, grants)
        batch = self.read_authorized(body, grants)
        if batch.needs_providers() or count_targets(batch) > INLINE_EXPAND_TARGETS:
            return await run_in_threadpool(self.expand, batch)
        return self.expand(batch)

    def read_authorized(self, body: bytes, grants: list[Grant]) -> ChangeBatch:
        """The checked body, for a business the grants cover (:class:`Rejection` otherwise)."""
        try:
            batch = read_batch(body, self.settings.max_targets_per_request)
        except TooManyTargets as exc:
            raise Rejection(413, "too_many_targets", str(exc), count=exc.count, cap=exc.cap) from None
        except PayloadError as exc:
            raise _bad_payload(exc) from None
        self.authorize(grants, batch.business_id)
        return batch

    def expand(self, batch: ChangeBatch) -> list[Change]:
        """The batch's changes, one per target (may read the channel list: see :meth:`parse_changes`)."""
        try:
            return expand_batch(batch, self.runtime.known_providers)
        except PayloadError as exc:
            raise _bad_payload(exc) from None
        except ProvidersUnavailable as exc:
            raise Rejection(503, "unavailable", str(exc)) from None

    def record_api(self, body: bytes, grant: Grant) -> tuple[int, dict]:
        changes = self.parse_changes(body, [grant])
        return self._api_answer(accept(changes, timers=self.timers, producer="api", actor=grant.name))

    async def record_standard_async(self, event_id: str, grants: list[Grant], raw: bytes) -> tuple[int, dict]:
        """Record a signed Standard Webhook on the event loop (group commit). One that fits one
        record call is marked delivered by that call (``producers.dedupe``: one round trip); a
        larger one is claimed first and marked done after."""
        changes = await self.parse_changes_async(raw, grants)
        actor = ",".join(g.name for g in grants)
        if changes and len(changes) <= RECORD_CHUNK:
            mark = delivery_key(self.keys, changes[0].target.business_id, "standard", event_id)
            result = await self.recorder.accept(changes, source="standard", actor=actor, delivery=mark)
            if all(o.delivered for o in result.outcomes):
                return self._not_claimed("standard", event_id, "duplicate")
            webhook_event("standard", "accepted").inc()
            return 202, {"accepted": result.accepted, "superseded": result.superseded, "duplicate": result.duplicate}
        key = dedupe_key(self.keys, "standard", event_id)
        claim = await self.recorder.claim(key)
        if claim != "claimed":
            return self._not_claimed("standard", event_id, claim)
        try:
            result = await self.recorder.accept(changes, source="standard", actor=actor)
        except BaseException:
            with contextlib.suppress(redis.RedisError, OSError):
                await self.recorder.release(key)  # let the sender's retry through at once
            raise
        await self.recorder.done(key)
        webhook_event("standard", "accepted").inc()
        return 202, {"accepted": result.accepted, "superseded": result.superseded, "duplicate": result.duplicate}

    async def record_api_async(self, body: bytes, grant: Grant) -> tuple[int, dict]:
        """:meth:`record_api` on the event loop (group commit)."""
        changes = await self.parse_changes_async(body, [grant])
        result = await self.recorder.accept(changes, source="api", actor=grant.name)
        return self._api_answer(result)

    def _api_answer(self, result: SubmitResult) -> tuple[int, dict]:
        answer = {"accepted": result.accepted, "superseded": result.superseded, "duplicate": result.duplicate}
        if result.duplicate and result.duplicate == len(result.outcomes):
            # Every change repeats the stored one (same target, event time and value): nothing to do.
            webhook_event("api", "duplicate").inc()
            return 200, answer
        webhook_event("api", "accepted").inc()
        return 202, answer

    def _not_claimed(self, source: str, event_id: str, claim: str) -> tuple[int, dict]:
        if claim == "duplicate":
            WEBHOOK_EVENTS.labels(source, "duplicate").inc()
            log.info("webhook duplicate", source=source, event_id=event_id)
            return 200, {"duplicate": True, "accepted": 0}
        WEBHOOK_EVENTS.labels(source, "in_progress").inc()
        return 409, {"error": "in_progress", "detail": "this event is being recorded now; retry later"}

    # -- per source, on the event loop (CPU only) ------------------------------------------------

    def square(self, request: Request, body: bytes) -> tuple[Callable[..., tuple[int, dict]], tuple] | dict:
        verify_square(
            body,
            request.headers.get("x-square-hmacsha256-signature"),
            self.settings.square_notification_url,
            self.square_keys,
        )
        envelope = parse_square(body)
        if envelope.type != SQUARE_INVENTORY_EVENT:
            return {"ignored": f"event type {envelope.type}"}
        assert isinstance(envelope, SquareInventoryEvent)
        levels = square_levels(envelope)
        if not levels:
            return {"ignored": "no IN_STOCK counts"}
        return self.record_pos, ("square", envelope.event_id, levels, body)

    def shopify(self, request: Request, body: bytes) -> tuple[Callable[..., tuple[int, dict]], tuple] | dict:
        verify_shopify(body, request.headers.get("x-shopify-hmac-sha256"), self.shopify_secrets)
        topic = request.headers.get("x-shopify-topic")
        if not topic:
            raise PayloadError("missing X-Shopify-Topic header", "X-Shopify-Topic")
        event_id = request.headers.get("x-shopify-event-id") or request.headers.get("x-shopify-webhook-id")
        if not event_id:
            raise PayloadError("missing X-Shopify-Event-Id header", "X-Shopify-Event-Id")
        if len(event_id) > 200:
            raise PayloadError("X-Shopify-Event-Id is longer than 200 characters", "X-Shopify-Event-Id")
        if topic != SHOPIFY_INVENTORY_TOPIC:
            return {"ignored": f"topic {topic}"}
        level = parse_shopify(body)
        # Shopify does not sign X-Shopify-Event-Id: a replayed body under a new id must still be a
        # duplicate, so deliveries are deduplicated on the signed body itself.
        body_id = "sha256:" + hashlib.sha256(body).hexdigest()
        return self.record_pos, ("shopify", event_id, shopify_levels(level), body, body_id)

    def standard(self, request: Request, body: bytes) -> tuple[Callable[..., Any], tuple] | dict:
        event_id, matched = verify_standard(
            body, request.headers, self.standard_secrets, tolerance_s=self.settings.webhook_tolerance_s
        )
        if len(event_id) > 200:
            raise PayloadError("webhook-id is longer than 200 characters", "webhook-id")
        return self.record_standard_async, (event_id, [self.standard_grants[i] for i in matched], body)


class ReceiverApp(FastAPI):
    """FastAPI with the intake routes (``POST /v1/changes``, ``POST /webhooks/{source}``) answered
    straight from the ASGI call: the same endpoint functions, called with a Starlette request,
    without FastAPI's routing, dependency solving and middleware stack (most of a one-change
    request's cost besides the record itself). Every other request, and these routes under another
    method or path spelling (a trailing slash, a mount's root path), goes through FastAPI as before;
    the routes stay declared there too (OpenAPI). The endpoints build every answer themselves and
    raise nothing that FastAPI's handlers would turn into an answer; an unexpected error reaches
    the server, which answers 500 as FastAPI's error middleware would."""

    _changes_endpoint: Callable[[Request], Awaitable[Response]] | None = None
    _webhook_endpoint: Callable[[str, Request], Awaitable[Response]] | None = None

    def intake_routes(
        self,
        changes: Callable[[Request], Awaitable[Response]],
        webhook: Callable[[str, Request], Awaitable[Response]],
    ) -> None:
        self._changes_endpoint = changes
        self._webhook_endpoint = webhook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            path: str = scope["path"]
            response: Response | None = None
            if path == "/v1/changes" and self._changes_endpoint is not None:
                response = await self._changes_endpoint(Request(scope, receive))
            elif path.startswith("/webhooks/") and self._webhook_endpoint is not None:
                source = path[len("/webhooks/") :]
                if source and "/" not in source:
                    response = await self._webhook_endpoint(source, Request(scope, receive))
            if response is not None:
                await send(
                    {"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers}
                )
                await send({"type": "http.response.body", "body": response.body})
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, client: redis.Redis | None = None, recorder: Recorder | None = None) -> FastAPI:
    """The receiver app. ``client`` defaults to the process-wide pool for ``settings.redis_url``,
    ``recorder`` to one on an asyncio client of ``settings.redis_url``."""
    receiver = Receiver(settings, client, recorder)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await receiver.recorder.aclose()

    app = ReceiverApp(title="menusync producers", version="1", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.receiver = receiver
    limit = settings.webhook_max_body_bytes
    handlers = {"square": receiver.square, "shopify": receiver.shopify, "standard": receiver.standard}

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    async def run(work: Callable[..., Any], args: tuple, source: str) -> Response:
        # A coroutine function runs on the event loop (producers.recorder); any other on a worker
        # thread: parsing and expanding a batch, then the blocking Redis calls.
        try:
            if inspect.iscoroutinefunction(work):
                status, body = await work(*args)
            else:
                status, body = await run_in_threadpool(work, *args)
        except Rejection as exc:
            return rejected(source, exc)
        except (redis.RedisError, OSError):
            WEBHOOK_EVENTS.labels(source, "unavailable").inc()
            log.warning("redis unavailable", source=source, exc_info=True)
            return _error(503, "unavailable", "the change store is unavailable; retry later")
        return _json(status, body)

    def rejected(source: str, exc: Rejection) -> Response:
        WEBHOOK_EVENTS.labels(source, exc.error).inc()
        log.info("request rejected", source=source, status=exc.status, error=exc.error, detail=exc.detail)
        return _error(exc.status, exc.error, exc.detail, **exc.extra)

    @app.post("/webhooks/{source}", status_code=202, summary="A POS webhook (square, shopify, standard)")
    async def webhook(source: str, request: Request) -> Response:
        handler = handlers.get(source)
        if handler is None:
            return _error(404, "unknown_source", f"unknown webhook source {source[:64]!r}")
        try:
            body = await read_body(request, limit)
            try:
                step = handler(request, body)
            except SignatureError as exc:
                raise Rejection(401, "unauthorized", str(exc)) from None
            except PayloadError as exc:
                raise _bad_payload(exc) from None
        except Rejection as exc:
            return rejected(source, exc)
        if isinstance(step, dict):
            WEBHOOK_EVENTS.labels(source, "ignored").inc()
            return _json(200, {"accepted": 0, **step})
        work, args = step
        return await run(work, args, source)

    @app.post(
        "/v1/changes",
        status_code=202,
        summary="Record canonical changes",
        openapi_extra={
            "requestBody": {"required": True, "content": {JSON: {"schema": ChangeBatch.model_json_schema()}}}
        },
    )
    async def changes(request: Request) -> Response:
        try:
            auth = request.headers.get("authorization", "")
            scheme, _, token = auth.partition(" ")
            given = token.strip().encode()
            grant = match_token(given, receiver.api_grants)
            if scheme.lower() != "bearer" or not given or grant is None:
                raise Rejection(401, "unauthorized", "missing or invalid bearer token")
            body = await read_body(request, limit)
        except Rejection as exc:
            return rejected("api", exc)
        return await run(receiver.record_api_async, (body, grant), "api")

    app.intake_routes(changes, webhook)
    app.include_router(operations_router(settings, receiver.runtime))
    mount_console(app, receiver)  # /console and GET /v1/businesses/{id}/history

    @app.get("/healthz")
    async def healthz() -> Response:
        return _json(200, {"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> Response:
        try:
            await run_in_threadpool(receiver.client.ping)
        except (redis.RedisError, OSError):
            return _error(503, "unavailable", "redis does not answer")
        return _json(200, {"status": "ready"})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(content=generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
