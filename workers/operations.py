"""Store and menu operations from the klikit reference: populate stores, reset store overrides,
create an item (or a modifier option) and link it to a group. Used by ``menusync stores ...``,
``menusync items ...`` and the operations API (``/v1/operations/...``).

Each operation is made safe for operators:

- **populate** is first-time only and klikit skips a store that already has menu rows *silently*
  (it answers success for every store). So each store is looked at first and only stores that show
  no sign of rows are sent; the others are reported ``skipped: has N rows; use sync``. The signs,
  all that the reference lets a partner observe (see :func:`populate_verdict`): the store's
  published menu (store-mode ``getMenu``: N = the entities it shows; a store never published shows
  no sections), store-level targets menusync holds for it (it wrote overrides there, so the store
  has rows), and stores menusync populated before (``ops:populated:B``). A store that has rows but
  was never published and never touched by menusync looks new: klikit would skip it silently and
  nothing a partner can read tells the two apart. The publish follows through the debounced
  publish actor.
- **reset** is destructive: the store-level targets menusync holds for the stores are shown first;
  the call needs an explicit confirmation (the caller's job). It runs holding the business's flush
  lease, so no flush writes to those stores between klikit's reset and the ledger's update; then
  ``ops_store_targets.lua`` either re-pends every such target under a new idempotency key (the
  default: menusync's own overrides are written again) or forgets them (the business menu wins).
- **create** validates before any call (provider ``"1"`` price, ISO 639-1 locale keys, VAT >= 0,
  SKU <= 50), sends the create under a key derived from the request id (the same request id never
  creates twice: klikit replays its recorded answer), and with a group links the new option; a
  link that fails after the create is reported with the one command that finishes the job.

Every call takes from the credential's rate budget, and its failure is classified by
:func:`workers.outcomes.decide_outcome` (the pipeline's one outcome policy): transient failures are
retried a few times with backoff, a 429 waits its ``Retry-After``, anything else stops the
operation with klikit's code and ``request_id`` (:class:`OperationFailed`). Each operation leaves
an audit record (who, when, what, klikit's ``request_id``) in the capped stream ``<prefix>:audit``.
No secret is ever part of a result or an audit record.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import ValidationError

from config.credentials import CredentialsError
from klikit.client import KlikitClient, KlikitResponse
from klikit.errors import ClientUsageError, KlikitError
from klikit.menu_tree import parse_menu
from klikit.models import (
    KLIKIT_PROVIDER,
    MAX_SKU_LENGTH,
    CreateItemRequest,
    EachPrice,
    LinkModifiersRequest,
    ModifierAttachment,
    SyncRequest,
    SyncSection,
    ZoneStore,
)
from workers.changes import Store
from workers.clock import now_ms
from workers.lease import BusinessLease
from workers.ledger import TargetState
from workers.outcomes import Action, Failures, RetryPolicy, decide_outcome
from workers.publish_state import ALL_STORES, PublishTracker
from workers.runtime import Runtime
from workers.scripts import script

log = structlog.get_logger("menusync.operations")

#: Attempts of one operation call (each with the client's own short in-call retries) for transient errors.
CALL_ATTEMPTS = 4
#: 429s one call waits out before giving up.
RATE_LIMIT_WAITS = 5
#: The longest one call waits in total for the rate budget or a Retry-After.
MAX_WAIT_MS = 60_000
#: Entries kept in the audit stream (approximately).
AUDIT_MAXLEN = 10_000
#: How long reset waits for a running flush to let go of the business's lease.
LEASE_WAIT_S = 15.0
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,40}$")
LOCALE = re.compile(r"^[a-z]{2}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")


class InvalidInput(ValueError):
    """Input refused before any call; ``field`` names the option (CLI) or body field (web)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class OperationFailed(Exception):
    """A klikit call of an operation failed for good: klikit's code, status and request_id."""

    def __init__(self, step: str, error: KlikitError, done: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{step}: {error}")
        self.step = step
        self.code = error.code
        self.status = error.status
        self.request_id = error.request_id
        self.message = error.message
        self.attempts = error.attempts
        self.done = dict(done or {})
        """What the operation did before the failure (e.g. the item created before a failed link)."""

    def to_json(self) -> dict[str, Any]:
        return {
            **self.done,
            "ok": False,
            "step": self.step,
            "code": self.code,
            "status": self.status,
            "request_id": self.request_id,
            "message": self.message,
        }


class LeaseBusy(Exception):
    """A flush of the business held its lease for longer than :data:`LEASE_WAIT_S`."""


# --- pure: parsing and decisions -------------------------------------------------------------------------


def parse_store(text: str, field: str = "--store") -> Store:
    """``"5297:1293"`` -> Store."""
    brand, sep, branch = text.strip().partition(":")
    if (
        not sep
        or not (brand.isascii() and brand.isdigit())
        or not (branch.isascii() and branch.isdigit())
        or int(brand) <= 0
        or int(branch) <= 0
    ):
        raise InvalidInput(field, f"{text!r} is not BRAND:BRANCH (two positive integers)")
    return Store(brand_id=int(brand), branch_id=int(branch))


def parse_int_list(text: str, field: str) -> list[int]:
    """``"6826,6827"`` -> [6826, 6827]."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not (part.isascii() and part.isdigit()) or int(part) <= 0:
            raise InvalidInput(field, f"{part!r} is not a positive integer id")
        out.append(int(part))
    if not out:
        raise InvalidInput(field, "names no id")
    return list(dict.fromkeys(out))


def check_request_id(request_id: str | None) -> str:
    """The operator's request id, or a new one; the idempotency keys derive from it."""
    if request_id is None:
        return f"op-{secrets.token_hex(8)}"
    if not REQUEST_ID.match(request_id):
        raise InvalidInput("--request-id", "1-40 characters of letters, digits, '.', '_' or '-'")
    return request_id


def idempotency_key(kind: str, business_id: int, request_id: str) -> str:
    """``ms-op-<kind>-<business>-<request id>``: at most 64 characters (klikit's limit)."""
    return f"ms-op-{kind}-{business_id}-{request_id}"[:64]


def parse_locale_text(pairs: Iterable[str], field: str) -> dict[str, str]:
    """``["en=Margherita", "id=Margherita"]`` -> ``{"en": ..., "id": ...}`` (ISO 639-1 keys)."""
    out: dict[str, str] = {}
    for pair in pairs:
        lang, sep, text = pair.partition("=")
        if not sep or not text.strip():
            raise InvalidInput(field, f"{pair!r} is not LANG=TEXT")
        if not LOCALE.match(lang):
            raise InvalidInput(field, f"{lang!r} is not an ISO 639-1 code (two lowercase letters, e.g. en)")
        out[lang] = text.strip()
    return out


def check_locale_keys(text: Mapping[str, Any], field: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for lang, value in text.items():
        if not isinstance(lang, str) or not LOCALE.match(lang):
            raise InvalidInput(f"{field}.{lang}", "not an ISO 639-1 code (two lowercase letters, e.g. en)")
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{field}.{lang}", "must be a non-empty string")
        out[lang] = value.strip()
    return out


def parse_prices(specs: Iterable[str], field: str = "--price") -> dict[str, dict[str, dict[str, float | int]]]:
    """``["1:IDR:50000", "6:IDR:55000:52000"]`` (provider:currency:price[:take-away]) -> a PriceMap."""
    prices: dict[str, dict[str, dict[str, float | int]]] = {}
    for spec in specs:
        parts = spec.split(":")
        if len(parts) not in (3, 4):
            raise InvalidInput(field, f"{spec!r} is not PROVIDER:CURRENCY:PRICE[:TAKEAWAY]")
        provider, currency, *amounts = parts
        numbers: list[float | int] = []
        for amount in amounts:
            try:
                number = float(amount)
            except ValueError:
                raise InvalidInput(field, f"{amount!r} in {spec!r} is not a number") from None
            if number < 0 or number != number or number in (float("inf"),):
                raise InvalidInput(field, f"{amount!r} in {spec!r} must be a number >= 0")
            numbers.append(int(number) if number.is_integer() else number)
        price = numbers[0]
        take_away = numbers[1] if len(numbers) > 1 else price
        prices.setdefault(provider, {})[currency] = EachPrice(price=price, take_away_price=take_away).wire()
    return prices


def build_item(
    *,
    title: Mapping[str, str],
    prices: Mapping[str, Mapping[str, Mapping[str, Any]]],
    vat: float = 0,
    sku: str | None = None,
    visible: Sequence[int] = (1,),
    description: Mapping[str, str] | None = None,
    only_modifier: bool = False,
    fields: Mapping[str, str] | None = None,
) -> CreateItemRequest:
    """The createItem body, checked field by field; :class:`InvalidInput` names the option or field.

    ``fields`` maps the logical names (title, prices, vat, sku, visible, description) to what the
    caller calls them (CLI options or body fields)."""
    name = {"title": "title", "prices": "prices", "vat": "vat", "sku": "sku", "visible": "visible"}
    name.update({"description": "description"})
    name.update(fields or {})
    if not title:
        raise InvalidInput(name["title"], "at least one title is required (e.g. en=Margherita)")
    title = check_locale_keys(title, name["title"])
    described = check_locale_keys(description, name["description"]) if description else None
    if KLIKIT_PROVIDER not in prices or not prices[KLIKIT_PROVIDER]:
        raise InvalidInput(name["prices"], 'a price for the klikit provider "1" is required (e.g. 1:IDR:50000)')
    for provider, per_currency in prices.items():
        if not (str(provider).isascii() and str(provider).isdigit()):
            raise InvalidInput(name["prices"], f"provider {provider!r} is not a provider id")
        for currency in per_currency:
            if not CURRENCY.match(currency):
                raise InvalidInput(name["prices"], f"currency {currency!r} is not an ISO 4217 code (e.g. IDR)")
    if isinstance(vat, bool) or not isinstance(vat, int | float) or vat < 0:
        raise InvalidInput(name["vat"], "must be a number >= 0")
    if sku is not None and (not sku or len(sku) > MAX_SKU_LENGTH):
        raise InvalidInput(name["sku"], f"must be 1 to {MAX_SKU_LENGTH} characters")
    if not visible or any(isinstance(p, bool) or not isinstance(p, int) or p <= 0 for p in visible):
        raise InvalidInput(name["visible"], "must name at least one provider id")
    try:
        return CreateItemRequest(
            title=title,
            vat=vat,
            visibilities={str(p): True for p in visible},
            prices=prices,  # type: ignore[arg-type]
            description=described,
            sku=sku,
            only_modifier=True if only_modifier else None,
            from_api=True,
        )
    except (ValidationError, ClientUsageError) as exc:
        raise InvalidInput(name["prices"], str(exc).splitlines()[0]) from None


def store_targets(view: Mapping[str, TargetState], stores: Iterable[Store]) -> list[str]:
    """The ledger's store-level target keys at ``stores``, sorted."""
    scopes = {s.key() for s in stores}
    return sorted(key for key in view if key.split("|")[1] in scopes)


@dataclass(frozen=True)
class PopulateVerdict:
    populate: bool
    rows: int
    reason: str


def populate_verdict(published_entities: int, menusync_targets: int, populated_before: bool) -> PopulateVerdict:
    """Whether to send a store to populate, from what can be observed of its rows.

    ``published_entities``: entities of its published menu (store-mode getMenu; 0 = never published);
    ``menusync_targets``: store-level targets menusync holds there (it wrote overrides: rows exist);
    ``populated_before``: menusync populated it already."""
    if published_entities:
        return PopulateVerdict(False, published_entities, f"has {published_entities} rows; use sync")
    if menusync_targets:
        return PopulateVerdict(
            False, menusync_targets, f"has {menusync_targets} rows (menusync's own store overrides); use sync"
        )
    if populated_before:
        return PopulateVerdict(False, 0, "has rows (populated by menusync before, not yet published); use sync")
    return PopulateVerdict(True, 0, "no published menu, no store overrides")


def require_credentials(rt: Runtime, business_id: int) -> None:
    """Refuse (before any call) a business the credentials file does not name."""
    try:
        rt.credential(business_id)
    except CredentialsError:
        raise InvalidInput("BUSINESS", f"menusync has no klikit credentials for business {business_id}") from None


# --- calls through the budget and the outcome policy -----------------------------------------------------


@dataclass
class Caller:
    """One business's klikit calls for an operation: rate budget first, failures by the outcome policy."""

    rt: Runtime
    business_id: int
    sleep: Callable[[float], None] = time.sleep
    calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def client(self) -> KlikitClient:
        return self.rt.client(self.business_id)

    def _take_budget(self, waited_ms: int) -> int:
        budget = self.rt.budget(self.business_id)
        wait = budget.take()
        while wait:
            if waited_ms + wait > MAX_WAIT_MS:
                raise OperationFailed(
                    "budget", KlikitError("the rate budget stays exhausted", code="rate_limit_exceeded", status=429)
                )
            self.sleep(wait / 1000)
            waited_ms += wait
            wait = budget.take()
        return waited_ms

    def call(self, step: str, send: Callable[[KlikitClient], KlikitResponse]) -> KlikitResponse:
        waited_ms, failures, limited = 0, 0, 0
        # An operator waits for the answer: a few tries in place, then the failure is theirs to see.
        policy = RetryPolicy.from_settings(self.rt.settings, max_age=False, max_attempts=CALL_ATTEMPTS)
        while True:
            waited_ms = self._take_budget(waited_ms)
            try:
                response = send(self.client)
            except ClientUsageError as usage:
                raise OperationFailed(step, KlikitError(str(usage), code="client_usage_error")) from None
            except KlikitError as error:
                bound = log.bind(business_id=self.business_id, step=step, code=error.code, request_id=error.request_id)
                then = decide_outcome(error, policy, Failures(failures + 1, 0, 0), random.random())
                if then.action is Action.RATE_LIMITED and limited < RATE_LIMIT_WAITS:
                    wait_ms = then.delay_ms
                    self.rt.budget(self.business_id).penalize(wait_ms)
                    if waited_ms + wait_ms <= MAX_WAIT_MS:
                        limited += 1
                        waited_ms += wait_ms
                        bound.warning("klikit rate limit: waiting", retry_after_ms=wait_ms)
                        self.sleep(wait_ms / 1000)
                        continue
                if then.action is Action.RETRY:
                    failures += 1
                    bound.warning("klikit call failed, retrying", attempt=failures, delay_ms=then.delay_ms)
                    self.sleep(then.delay_ms / 1000)
                    continue
                self.calls.append({"step": step, "code": error.code, "request_id": error.request_id})
                raise OperationFailed(step, error) from None
            self.calls.append({"step": step, "status": response.status, "request_id": response.request_id})
            return response


# --- audit -----------------------------------------------------------------------------------------------


class AuditLog:
    """Operations in a capped Redis stream ``<prefix>:audit`` (newest last)."""

    def __init__(self, rt: Runtime) -> None:
        self.r = rt.redis
        self.key = rt.keys("audit")

    def record(self, entry: Mapping[str, Any]) -> str:
        fields = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in entry.items() if v is not None}
        fields.setdefault("at_ms", str(now_ms()))
        return str(self.r.xadd(self.key, fields, maxlen=AUDIT_MAXLEN, approximate=True))

    def entries(self, limit: int = 50, business_id: int | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for entry_id, raw in self.r.xrevrange(self.key, count=limit if business_id is None else limit * 10):
            entry: dict[str, Any] = {}
            for k, v in raw.items():
                try:
                    entry[k] = json.loads(v)
                except ValueError:
                    entry[k] = v
            entry["id"] = entry_id
            if business_id is None or entry.get("business_id") == business_id:
                out.append(entry)
            if len(out) >= limit:
                break
        return out


# --- the operations --------------------------------------------------------------------------------------


def _populated_key(rt: Runtime, business_id: int) -> str:
    return rt.keys.business(business_id, "ops", "populated")


def _publish(rt: Runtime, business_id: int, store_keys: Sequence[str]) -> bool:
    """Touch the publish state for these stores and send the (debounced) publish when due."""
    from workers import actors

    tracker = PublishTracker(rt.redis, rt.keys, business_id)
    if tracker.touch(list(store_keys) or [ALL_STORES], rt.settings.publish_quiet_ms):
        actors.send_publish(business_id, 0)
        return True
    return False


def _sections(caller: Caller, wanted: Sequence[int] | None) -> dict[str, SyncSection]:
    """The sections to push: ``wanted`` (or every section of the business menu), at their business sequence."""
    data = caller.call("read business menu", lambda c: c.get_menu()).data
    menu = data.get("menu") if isinstance(data, dict) else None
    listed = menu.get("sections") if isinstance(menu, dict) else None
    sequence: dict[int, int] = {}
    for section in listed if isinstance(listed, list) else []:
        if isinstance(section, dict) and isinstance(section.get("id"), int):
            raw = section.get("sequence")
            sequence[section["id"]] = raw if isinstance(raw, int) else len(sequence) + 1
    ids = list(wanted) if wanted else list(sequence)
    if not ids:
        raise InvalidInput("--sections", "the business menu has no sections to populate")
    return {str(i): SyncSection(sequence=sequence.get(i, n), available_times={}) for n, i in enumerate(ids, 1)}


def _store_reader(store: Store) -> Callable[[KlikitClient], KlikitResponse]:
    return lambda client: client.get_menu(store.brand_id, store.branch_id)


def populate(
    rt: Runtime,
    business_id: int,
    stores: Sequence[Store],
    *,
    sections: Sequence[int] | None = None,
    request_id: str | None = None,
    who: str,
    caller: Caller | None = None,
) -> dict[str, Any]:
    """Populate the stores that show no menu rows; report the others as skipped. See the module doc."""
    if not stores:
        raise InvalidInput("--store", "name at least one store")
    require_credentials(rt, business_id)
    request_id = check_request_id(request_id)
    caller = caller or Caller(rt, business_id)
    view = rt.ledger.view(business_id)
    populated_before = set(rt.redis.smembers(_populated_key(rt, business_id)))
    results: list[dict[str, Any]] = []
    fresh: list[Store] = []
    for store in dict.fromkeys(stores):
        menu = caller.call(f"read store {store.key()}", _store_reader(store))
        verdict = populate_verdict(
            len(parse_menu(menu.data)), len(store_targets(view, [store])), store.key() in populated_before
        )
        results.append({"store": store.key(), "outcome": "pending", "rows": verdict.rows, "reason": verdict.reason})
        if verdict.populate:
            fresh.append(store)
    key = idempotency_key("populate", business_id, request_id)
    klikit_request_id = None
    if fresh:
        body = SyncRequest(
            stores=[ZoneStore(brand_id=s.brand_id, branch_id=s.branch_id) for s in fresh],
            sections=_sections(caller, sections),
        )
        response = caller.call("populate", lambda c: c.populate_stores(body, idempotency_key=key))
        klikit_request_id = response.request_id
        rt.redis.sadd(_populated_key(rt, business_id), *[s.key() for s in fresh])
        _publish(rt, business_id, [s.key() for s in fresh])
    fresh_keys = {s.key() for s in fresh}
    for row in results:
        if row["store"] in fresh_keys:
            row["outcome"] = "populated"
        else:
            row["outcome"] = "skipped"
    outcome = {
        "ok": True,
        "operation": "populate",
        "business_id": business_id,
        "request_id": klikit_request_id,
        "operation_request_id": request_id,
        "idempotency_key": key if fresh else None,
        "stores": results,
        "populated": len(fresh),
        "skipped": len(results) - len(fresh),
        "publish": "scheduled" if fresh else None,
    }
    AuditLog(rt).record(
        {
            "operation": "populate",
            "who": who,
            "business_id": business_id,
            "stores": [r["store"] for r in results],
            "populated": sorted(fresh_keys),
            "skipped": [r["store"] for r in results if r["outcome"] == "skipped"],
            "request_id": klikit_request_id,
            "operation_request_id": request_id,
        }
    )
    return outcome


def reset_preview(rt: Runtime, business_id: int, stores: Sequence[Store] | None) -> dict[str, Any]:
    """What a reset of ``stores`` (None: every store) loses of menusync's own state."""
    require_credentials(rt, business_id)
    scope = list(stores) if stores else list(rt.stores(business_id))
    view = rt.ledger.view(business_id)
    held = store_targets(view, scope)
    return {
        "business_id": business_id,
        "stores": [s.key() for s in scope],
        "all_stores": not stores,
        "targets": held,
        "count": len(held),
        "dead": sum(1 for k in held if view[k].dead),
    }


def _hold_lease(rt: Runtime, business_id: int, sleep: Callable[[float], None]) -> BusinessLease:
    lease = BusinessLease(rt.redis, rt.keys, business_id, rt.settings.lease_ttl_ms)
    deadline = time.monotonic() + LEASE_WAIT_S
    while not lease.acquire():
        if time.monotonic() > deadline:
            raise LeaseBusy(f"a flush of business {business_id} holds its lease; try again in a moment")
        sleep(0.05)
    return lease


def reset(
    rt: Runtime,
    business_id: int,
    stores: Sequence[Store] | None,
    *,
    forget: bool = False,
    request_id: str | None = None,
    who: str,
    caller: Caller | None = None,
) -> dict[str, Any]:
    """Reset the store overrides of ``stores`` (None: every store) in klikit, then re-pend (or forget)
    menusync's store-level targets there, holding the flush lease throughout. The caller confirmed."""
    from workers import actors

    request_id = check_request_id(request_id)
    caller = caller or Caller(rt, business_id)
    preview = reset_preview(rt, business_id, stores)
    scope = [Store.from_key(k) for k in preview["stores"]]
    key = idempotency_key("reset", business_id, request_id)
    body: dict[str, Any] = {"business_id": business_id}
    if stores:
        body["stores"] = [ZoneStore(brand_id=s.brand_id, branch_id=s.branch_id).wire() for s in scope]
    mode = "forget" if forget else "reapply"
    lease = _hold_lease(rt, business_id, caller.sleep)
    try:
        with lease.keep_alive():  # renewed while klikit takes its time: no flush writes in between
            response = caller.call("reset", lambda c: c.reset_store_overrides(body, idempotency_key=key))
        k = rt.keys
        names = ("desired", "dver", "cid", "aver", "pending", "nonce", "dead")
        keys = [k.business(business_id, name) for name in names]
        keys += [k.business(business_id, "drift"), k.business(business_id, "suspect")]
        keys += [lease.dirty_key, lease.scheduled_key, k.attention_of(business_id, "pending")]
        args: list[Any] = [now_ms(), mode, rt.settings.lease_ttl_ms, business_id, *[s.key() for s in scope]]
        reply = script(rt.redis, "ops_store_targets")(keys=keys, args=args)
    finally:
        lease.release()
    send, count, dead = reply[0], int(reply[1]), int(reply[2])
    # klikit's store snapshots keep the reset overrides until the next publish: schedule one.
    _publish(rt, business_id, [s.key() for s in scope])
    if send:
        actors.send_flush(business_id)
    elif rt.redis.exists(lease.dirty_key):
        actors.nudge([business_id], force=True)  # a nudge met our lease: flush now
    outcome = {
        "ok": True,
        "operation": "reset",
        "business_id": business_id,
        "mode": mode,
        "request_id": response.request_id,
        "operation_request_id": request_id,
        "idempotency_key": key,
        "stores": preview["stores"],
        "all_stores": preview["all_stores"],
        "targets_held": preview["count"],
        "repended" if mode == "reapply" else "forgotten": count,
        "left_dead_lettered": dead,
        "targets": reply[3:],
    }
    AuditLog(rt).record(
        {
            "operation": "reset",
            "who": who,
            "business_id": business_id,
            "stores": preview["stores"],
            "all_stores": preview["all_stores"],
            "mode": mode,
            "targets": count,
            "left_dead_lettered": dead,
            "request_id": response.request_id,
            "operation_request_id": request_id,
        }
    )
    return outcome


def link_command(business_id: int, modifier_id: int, group_id: int, request_id: str) -> str:
    return f"menusync items link {business_id} --modifier-id {modifier_id} --group {group_id} --request-id {request_id}"


def link(
    rt: Runtime,
    business_id: int,
    modifier_id: int,
    group_id: int,
    *,
    request_id: str,
    who: str,
    caller: Caller | None = None,
    audit: bool = True,
) -> KlikitResponse:
    """Attach modifier option ``modifier_id`` to ``group_id`` (key from the request id), then publish."""
    require_credentials(rt, business_id)
    caller = caller or Caller(rt, business_id)
    key = idempotency_key("link", business_id, request_id)
    body = LinkModifiersRequest(modifier_group_id=group_id, attach=[ModifierAttachment(id=modifier_id)])
    response = caller.call("link", lambda c: c.link_modifiers_to_group(body, idempotency_key=key))
    _publish(rt, business_id, [ALL_STORES])
    if audit:
        AuditLog(rt).record(
            {
                "operation": "link",
                "who": who,
                "business_id": business_id,
                "modifier_id": modifier_id,
                "group_id": group_id,
                "request_id": response.request_id,
                "operation_request_id": request_id,
            }
        )
    return response


def create_item(
    rt: Runtime,
    business_id: int,
    item: CreateItemRequest,
    *,
    group_id: int | None = None,
    request_id: str | None = None,
    who: str,
    caller: Caller | None = None,
) -> dict[str, Any]:
    """Create an item (or, with ``group_id``, a modifier option linked into that group)."""
    require_credentials(rt, business_id)
    request_id = check_request_id(request_id)
    if group_id is not None and not item.only_modifier:
        item = item.model_copy(update={"only_modifier": True})
    caller = caller or Caller(rt, business_id)
    key = idempotency_key("item", business_id, request_id)
    response = caller.call("create", lambda c: c.create_item(item, idempotency_key=key))
    data = response.data if isinstance(response.data, dict) else {}
    item_id = data.get("id")
    outcome: dict[str, Any] = {
        "ok": True,
        "operation": "create_item",
        "business_id": business_id,
        "kind": "modifier" if item.only_modifier else "item",
        "id": item_id,
        "request_id": response.request_id,
        "operation_request_id": request_id,
        "idempotency_key": key,
    }
    audit: dict[str, Any] = {
        "operation": "create_item",
        "who": who,
        "business_id": business_id,
        "kind": outcome["kind"],
        "item_id": item_id,
        "request_id": response.request_id,
        "operation_request_id": request_id,
    }
    if group_id is not None and isinstance(item_id, int):
        try:
            linked = link(
                rt, business_id, item_id, group_id, request_id=request_id, who=who, caller=caller, audit=False
            )
        except OperationFailed as failed:
            finish = link_command(business_id, item_id, group_id, request_id)
            failed.done = {
                "operation": "create_item",
                "business_id": business_id,
                "kind": "modifier",
                "id": item_id,
                "created": True,
                "create_request_id": response.request_id,
                "operation_request_id": request_id,
                "group_id": group_id,
                "linked": False,
                "finish": finish,
            }
            AuditLog(rt).record({**audit, "group_id": group_id, "linked": False, "link_error": failed.code})
            raise
        outcome.update({"group_id": group_id, "linked": True, "link_request_id": linked.request_id})
        audit.update({"group_id": group_id, "linked": True, "link_request_id": linked.request_id})
    AuditLog(rt).record(audit)
    return outcome
