"""The klikit partner-API client: one pooled HTTP client per credential.

``send`` is the one door: it checks the call locally (operation, path id, Idempotency-Key),
serializes the body once, sends it with short in-call retries for transient failures and
rate limits (the same key and the same bytes on every attempt), unwraps klikit's envelope
and raises the typed error of :mod:`klikit.errors` for anything else. The typed methods are
thin wrappers that validate their bodies through :mod:`klikit.models`.

Logging: one structlog event per attempt (``klikit.call``) with operation, status, code,
request_id, idempotency_key, attempt and duration_ms. Headers are never logged; the
secret and the Authorization value are registered with the log scrubber as well.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import json
import math
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import msgspec
import structlog
from pydantic import BaseModel, ValidationError
from tenacity import RetryCallState, Retrying, stop_after_attempt, stop_before_delay, wait_random_exponential
from tenacity.stop import stop_base

from config.credentials import BusinessCredential
from config.logging import register_secrets
from klikit.errors import (
    ClientUsageError,
    KlikitConnectionError,
    KlikitError,
    KlikitTimeout,
    NotEnvelopeError,
    RateLimited,
    TransientError,
    error_for,
)
from klikit.menu_tree import MenuSnapshot, decode_menu_answer, parse_menu
from klikit.models import (
    CreateCategoryRequest,
    CreateItemRequest,
    CreateSectionRequest,
    EnableUpdateRequest,
    LinkModifiersRequest,
    PublishRequest,
    SyncRequest,
    UpdateVisibilityRequest,
    WireModel,
)
from klikit.paths import API_PREFIX, ENABLE_OPERATION, OPERATIONS, VISIBILITY_OPERATION, Operation

if TYPE_CHECKING:
    from config.settings import Settings

log = structlog.get_logger("klikit")

MAX_IDEMPOTENCY_KEY_LENGTH = 64
USER_AGENT = "menusync-klikit/0.1"

M = TypeVar("M", bound=WireModel)
#: Reads a 2xx answer's bytes into ``(data, request_id)``; ``None``: decode it the general way.
AnswerDecoder = Callable[[bytes], "tuple[Any, str | None] | None"]


@dataclass(frozen=True)
class KlikitResponse:
    """A successful call: the envelope's ``data``, its ``request_id``, the HTTP status, attempts made."""

    data: Any
    request_id: str | None
    status: int
    attempts: int


@dataclass(frozen=True)
class RetryPolicy:
    """Short in-call retries. ``attempts=1`` disables them.

    Transient errors wait a full-jitter exponential backoff: uniform(0, min(max, min * 2^(n-1))).
    A rate limit waits its ``Retry-After`` when that is at most ``max_retry_after_s``; a longer
    one is raised at once so that the caller reschedules instead of holding a worker.
    ``max_elapsed_s`` (optional) bounds the whole call: no new attempt starts once the next one
    would begin later than that after the first (so a caller holding a lease can bound its hold
    by ``max_elapsed_s`` plus one request timeout).
    """

    attempts: int = 3
    min_backoff_s: float = 0.05
    max_backoff_s: float = 1.0
    max_retry_after_s: float = 2.0
    max_elapsed_s: float | None = None

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.min_backoff_s < 0 or self.max_backoff_s < self.min_backoff_s:
            raise ValueError("need 0 <= min_backoff_s <= max_backoff_s")
        if self.max_retry_after_s < 0:
            raise ValueError("max_retry_after_s must be >= 0")
        if self.max_elapsed_s is not None and self.max_elapsed_s < 0:
            raise ValueError("max_elapsed_s must be >= 0 or None")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def _normalize_base_url(base_url: str) -> str:
    url = base_url.strip().rstrip("/")
    if url.endswith(API_PREFIX):
        url = url[: -len(API_PREFIX)].rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ClientUsageError(f"base_url must be an http(s) URL, got {base_url!r}")
    return url


def _check_idempotency_key(operation: Operation, key: str | None) -> str:
    if key is None or not key.strip():
        raise ClientUsageError(f"{operation.name} is a write: an Idempotency-Key is required")
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ClientUsageError(f"Idempotency-Key is {len(key)} characters; klikit accepts at most 64")
    if not key.isascii() or not key.isprintable():
        raise ClientUsageError("Idempotency-Key must be printable ASCII")
    return key


def _encode_body(body: BaseModel | Mapping[str, Any] | None) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, WireModel):
        payload: Any = body.wire()
    elif isinstance(body, BaseModel):
        payload = body.model_dump(by_alias=True, exclude_none=True, mode="json")
    elif isinstance(body, Mapping):
        payload = dict(body)
    else:
        raise ClientUsageError(f"body must be a pydantic model or a dict, not {type(body).__name__}")
    try:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise ClientUsageError(f"body is not JSON-serializable: {exc}") from None


def _as_model(model: type[M], body: M | Mapping[str, Any]) -> M:
    if isinstance(body, model):
        return body
    if isinstance(body, Mapping):
        try:
            return model.model_validate(dict(body))
        except ValidationError as exc:
            raise ClientUsageError(f"invalid {model.__name__}: {exc}") from None
    raise ClientUsageError(f"expected {model.__name__} or a dict, not {type(body).__name__}")


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's one TLS context (system CAs, ``SSL_CERT_FILE`` honoured), shared by every client.

    Building one loads the CA bundle: about 20 ms of CPU. A worker meets thousands of businesses,
    each with a client of its own, so a context per client cost more than the calls it made."""
    return httpx.create_ssl_context()


class KlikitClient:
    """One business's connection to klikit (one credential, one connection pool, the shared TLS context)."""

    def __init__(
        self,
        base_url: str,
        credential: BusinessCredential,
        *,
        timeout: httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._base_url = _normalize_base_url(base_url)
        self._business_id = credential.business_id
        self._retry = retry or RetryPolicy()
        secret = credential.secret_key.get_secret_value()
        token = base64.b64encode(f"{credential.partner_key}:{secret}".encode()).decode()
        register_secrets([secret, token])
        self._http = httpx.Client(
            base_url=self._base_url,
            auth=httpx.BasicAuth(credential.partner_key, secret),
            timeout=timeout or httpx.Timeout(5.0, connect=2.0),
            transport=transport,
            verify=tls_context(),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            follow_redirects=False,
        )
        self._sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_settings(cls, settings: Settings, credential: BusinessCredential) -> KlikitClient:
        """A client for ``credential`` with the timeouts and in-call retry policy of ``settings``."""
        timeout = httpx.Timeout(
            connect=settings.klikit_connect_timeout_s,
            read=settings.klikit_read_timeout_s,
            write=settings.klikit_read_timeout_s,
            pool=settings.klikit_connect_timeout_s,
        )
        retry = RetryPolicy(
            attempts=settings.klikit_incall_attempts,
            min_backoff_s=settings.klikit_incall_min_backoff_s,
            max_backoff_s=settings.klikit_incall_max_backoff_s,
        )
        return cls(settings.effective_klikit_url, credential, timeout=timeout, retry=retry)

    # --- plumbing --------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def business_id(self) -> int:
        return self._business_id

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._retry

    def __repr__(self) -> str:
        return f"KlikitClient(base_url={self._base_url!r}, business_id={self._business_id})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KlikitClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the one door ----------------------------------------------------------------------------------

    def send(
        self,
        operation: str,
        *,
        body: BaseModel | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        path_id: int | None = None,
        idempotency_key: str | None = None,
        before_attempt: Callable[[], None] | None = None,
        attempts: int | None = None,
        decode: AnswerDecoder | None = None,
    ) -> KlikitResponse:
        """Send one operation of :data:`klikit.paths.OPERATIONS`; see the module docstring.

        ``before_attempt`` runs just before every attempt (in-call retries included); an
        exception it raises ends the call at once (a flush checks its lease there). ``attempts``
        overrides the policy's attempt count for this call (``1``: a single probe). ``decode``
        reads a 2xx answer's bytes into ``(data, request_id)`` itself, or answers ``None`` to
        leave the answer to the general envelope decoding.
        """
        op = OPERATIONS.get(operation)
        if op is None:
            raise ClientUsageError(f"unknown klikit operation {operation!r}")
        if path_id is not None and (isinstance(path_id, bool) or not isinstance(path_id, int)):
            raise ClientUsageError(f"path_id must be an int, got {path_id!r}")
        try:
            path = op.url_path(path_id)
        except ValueError as exc:
            raise ClientUsageError(str(exc)) from None
        headers: dict[str, str] = {}
        key: str | None = None
        if op.write:
            key = _check_idempotency_key(op, idempotency_key)
            headers["Idempotency-Key"] = key
        content = _encode_body(body)
        if content is not None:
            headers["Content-Type"] = "application/json"
        query = {k: v for k, v in (params or {}).items() if v is not None}

        policy = self._retry
        backoff = wait_random_exponential(multiplier=policy.min_backoff_s, max=policy.max_backoff_s)

        def should_retry(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome is not None else None
            if isinstance(exc, TransientError):
                return True
            if isinstance(exc, RateLimited):
                return exc.retry_after is None or exc.retry_after <= policy.max_retry_after_s
            return False

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome is not None else None
            if (
                isinstance(exc, KlikitError)
                and exc.retry_after is not None
                and exc.retry_after <= policy.max_retry_after_s
            ):
                return exc.retry_after
            return float(backoff(state))

        stop: stop_base = stop_after_attempt(attempts or policy.attempts)
        if policy.max_elapsed_s is not None:
            stop = stop | stop_before_delay(policy.max_elapsed_s)
        retrying = Retrying(
            stop=stop,
            wait=wait,
            retry=should_retry,
            reraise=True,
            sleep=lambda seconds: self._sleep(seconds),
        )
        result: KlikitResponse | None = None
        for attempt in retrying:
            with attempt:
                if before_attempt is not None:
                    before_attempt()
                number = attempt.retry_state.attempt_number
                result = self._attempt(op, path, content, headers, query, key, number, decode)
        assert result is not None
        return result

    def _attempt(
        self,
        op: Operation,
        path: str,
        content: bytes | None,
        headers: dict[str, str],
        params: dict[str, Any],
        key: str | None,
        attempt: int,
        decode: AnswerDecoder | None = None,
    ) -> KlikitResponse:
        started = time.perf_counter()
        fields: dict[str, Any] = {
            "operation": op.name,
            "method": op.method,
            "path": path,
            "idempotency_key": key,
            "attempt": attempt,
            "business_id": self._business_id,
        }
        try:
            response = self._http.request(op.method, path, content=content, headers=headers, params=params or None)
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            raise ClientUsageError(f"request could not be built: {type(exc).__name__}") from None
        except httpx.TimeoutException as exc:
            error: KlikitError = KlikitTimeout(f"{type(exc).__name__} after {_ms(started)} ms")
            self._log_failure(error, fields, started, attempt)
            raise error from None
        except httpx.RequestError as exc:
            error = KlikitConnectionError(f"{type(exc).__name__}: {_short(exc)}")
            self._log_failure(error, fields, started, attempt)
            raise error from None

        status = response.status_code
        header_request_id = response.headers.get("x-request-id")
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        fast = decode(response.content) if decode is not None and 200 <= status < 300 and response.content else None
        envelope = _parse_envelope(response.content) if fast is None else None

        if 200 <= status < 300:
            if fast is not None:
                data: Any = fast[0]
                request_id = fast[1] or header_request_id
            elif status == 204 or not response.content:
                data = None
                request_id = header_request_id
            elif envelope is not None and "data" in envelope:
                data = envelope["data"]
                request_id = _request_id(envelope) or header_request_id
            else:
                error = _not_envelope(response, header_request_id, retry_after)
                self._log_failure(error, fields, started, attempt)
                raise error
            log.info(
                "klikit.call",
                **fields,
                status=status,
                code=None,
                request_id=request_id,
                duration_ms=_ms(started),
            )
            return KlikitResponse(data=data, request_id=request_id, status=status, attempts=attempt)

        err = envelope.get("error") if envelope is not None else None
        if not isinstance(err, dict) or not isinstance(err.get("code"), str) or not err.get("code"):
            error = _not_envelope(response, header_request_id, retry_after)
        else:
            assert envelope is not None
            message = err.get("message")
            error = error_for(
                status,
                err["code"],
                message if isinstance(message, str) else "",
                _request_id(envelope) or header_request_id,
                retry_after,
            )
            details = err.get("details")
            if isinstance(details, dict):
                error.details = details
        self._log_failure(error, fields, started, attempt)
        raise error

    def _log_failure(self, error: KlikitError, fields: dict[str, Any], started: float, attempt: int) -> None:
        error.attempts = attempt
        log.warning(
            "klikit.call",
            **fields,
            status=error.status,
            code=error.code,
            request_id=error.request_id,
            duration_ms=_ms(started),
            error=type(error).__name__,
            retry_after=error.retry_after,
        )

    # --- typed operations ------------------------------------------------------------------------------

    def enable(
        self, level: str, request: EnableUpdateRequest | Mapping[str, Any], *, idempotency_key: str
    ) -> KlikitResponse:
        """Bulk enable / disable at ``level`` (section, category, item; a modifier is an item: enableItems)."""
        operation = ENABLE_OPERATION.get(level)
        if operation is None:
            raise ClientUsageError(f"no enable operation for level {level!r}; one of {sorted(ENABLE_OPERATION)}")
        body = _as_model(EnableUpdateRequest, request)
        return self.send(operation, body=body, idempotency_key=idempotency_key)

    def set_visibilities(
        self,
        level: str,
        entity_id: int,
        request: UpdateVisibilityRequest | Mapping[str, Any],
        *,
        idempotency_key: str,
    ) -> KlikitResponse:
        """Replace the visibility map of one entity at ``level`` (business map, or per-store with zone_stores)."""
        operation = VISIBILITY_OPERATION.get(level)
        if operation is None:
            raise ClientUsageError(
                f"no visibility operation for level {level!r}; one of {sorted(VISIBILITY_OPERATION)}"
            )
        body = _as_model(UpdateVisibilityRequest, request)
        return self.send(operation, body=body, path_id=entity_id, idempotency_key=idempotency_key)

    def sync_menu_to_stores(self, request: SyncRequest | Mapping[str, Any], *, idempotency_key: str) -> KlikitResponse:
        return self.send("sync_menu_to_stores", body=_as_model(SyncRequest, request), idempotency_key=idempotency_key)

    def populate_stores(self, request: SyncRequest | Mapping[str, Any], *, idempotency_key: str) -> KlikitResponse:
        """First-time push; stores that already have menu rows are skipped silently by klikit."""
        return self.send("populate_stores", body=_as_model(SyncRequest, request), idempotency_key=idempotency_key)

    def reset_store_overrides(self, body: Mapping[str, Any], *, idempotency_key: str) -> KlikitResponse:
        """Destructive: klikit drops every store-only edit. ``body`` is passed through verbatim."""
        if not isinstance(body, Mapping):
            raise ClientUsageError("reset_store_overrides takes a dict body")
        return self.send("reset_store_overrides", body=body, idempotency_key=idempotency_key)

    def publish_menu(self, request: PublishRequest | Mapping[str, Any], *, idempotency_key: str) -> KlikitResponse:
        return self.send("publish_menu", body=_as_model(PublishRequest, request), idempotency_key=idempotency_key)

    def get_menu(self, brand_id: int | None = None, branch_id: int | None = None) -> KlikitResponse:
        """Store mode with both ids (reads the published snapshot), business mode with neither."""
        if (brand_id is None) != (branch_id is None):
            raise ClientUsageError("brand_id and branch_id must be given together or not at all")
        return self.send("get_menu", params={"brand_id": brand_id, "branch_id": branch_id})

    def read_menu(self, brand_id: int | None = None, branch_id: int | None = None) -> MenuSnapshot:
        """:meth:`get_menu` read into a :class:`~klikit.menu_tree.MenuSnapshot` (what read-backs
        compare), decoding only the fields it holds; raises ``MenuShapeError`` for an answer
        that is not a menu tree, and the client's errors."""
        if (brand_id is None) != (branch_id is None):
            raise ClientUsageError("brand_id and branch_id must be given together or not at all")
        params = {"brand_id": brand_id, "branch_id": branch_id}
        data = self.send("get_menu", params=params, decode=decode_menu_answer).data
        return data if isinstance(data, MenuSnapshot) else parse_menu(data)

    def create_section(
        self, request: CreateSectionRequest | Mapping[str, Any], *, idempotency_key: str
    ) -> KlikitResponse:
        return self.send(
            "create_section", body=_as_model(CreateSectionRequest, request), idempotency_key=idempotency_key
        )

    def create_category(
        self, request: CreateCategoryRequest | Mapping[str, Any], *, idempotency_key: str
    ) -> KlikitResponse:
        return self.send(
            "create_category", body=_as_model(CreateCategoryRequest, request), idempotency_key=idempotency_key
        )

    def create_item(self, request: CreateItemRequest | Mapping[str, Any], *, idempotency_key: str) -> KlikitResponse:
        return self.send("create_item", body=_as_model(CreateItemRequest, request), idempotency_key=idempotency_key)

    def link_modifiers_to_group(
        self, request: LinkModifiersRequest | Mapping[str, Any], *, idempotency_key: str
    ) -> KlikitResponse:
        return self.send(
            "link_modifiers_to_group", body=_as_model(LinkModifiersRequest, request), idempotency_key=idempotency_key
        )

    def list_providers(self) -> KlikitResponse:
        return self.send("list_providers")

    def list_brands(self) -> KlikitResponse:
        return self.send("list_brands")

    def list_branches(self, page: int = 1, size: int = 1000) -> KlikitResponse:
        return self.send("list_branches", params={"page": page, "size": size})

    def list_stores(self) -> list[tuple[int, int]]:
        """Every (brand_id, branch_id) store of the business, from its brands and (all pages of) branches."""
        brand_ids = _brand_ids(self.list_brands().data)
        stores: set[tuple[int, int]] = set()
        page, size, seen = 1, 1000, 0
        while True:
            data = self.list_branches(page=page, size=size).data
            results = _branch_results(data)
            for branch in results:
                branch_id = branch.get("id")
                if not isinstance(branch_id, int):
                    continue
                for brand_id in _branch_brand_ids(branch):
                    if not brand_ids or brand_id in brand_ids:
                        stores.add((brand_id, branch_id))
            seen += len(results)
            total = data.get("total") if isinstance(data, dict) else None
            if not results or not isinstance(total, int) or seen >= total:
                break
            page += 1
        return sorted(stores)


# --- helpers ---------------------------------------------------------------------------------------------


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _short(exc: Exception) -> str:
    text = str(exc)
    return text[:200] if text else type(exc).__name__


def _parse_envelope(content: bytes) -> dict[str, Any] | None:
    if not content:
        return None
    try:
        value = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None


def _request_id(envelope: dict[str, Any]) -> str | None:
    value = envelope.get("request_id")
    return value if isinstance(value, str) and value else None


def _not_envelope(response: httpx.Response, request_id: str | None, retry_after: float | None) -> NotEnvelopeError:
    content_type = response.headers.get("content-type", "?")
    return NotEnvelopeError(
        f"HTTP {response.status_code} answer is not a klikit envelope ({content_type}, {len(response.content)} bytes)",
        status=response.status_code,
        request_id=request_id,
        retry_after=retry_after,
    )


def _brand_ids(data: Any) -> set[int]:
    """Brand ids from ``GET /brands``: ``[{brands: [{id, ...}], business: {...}}]`` (or a flat list)."""
    ids: set[int] = set()
    groups = data if isinstance(data, list) else [data]
    for group in groups:
        if not isinstance(group, dict):
            continue
        brands = group.get("brands")
        if isinstance(brands, list):
            ids.update(b["id"] for b in brands if isinstance(b, dict) and isinstance(b.get("id"), int))
        elif isinstance(group.get("id"), int):
            ids.add(group["id"])
    return ids


def _branch_results(data: Any) -> list[dict[str, Any]]:
    results = data.get("results") if isinstance(data, dict) else data
    return [b for b in results if isinstance(b, dict)] if isinstance(results, list) else []


def _branch_brand_ids(branch: dict[str, Any]) -> list[int]:
    """A branch's brands: ``brand_ids``, ``brands[{id}]`` or a single ``brand_id``."""
    found: list[int] = []
    raw_ids = branch.get("brand_ids")
    if isinstance(raw_ids, list):
        found.extend(i for i in raw_ids if isinstance(i, int))
    brands = branch.get("brands")
    if isinstance(brands, list):
        found.extend(b["id"] for b in brands if isinstance(b, dict) and isinstance(b.get("id"), int))
    single = branch.get("brand_id")
    if isinstance(single, int):
        found.append(single)
    return list(dict.fromkeys(found))
