"""What the flush must know before it can plan visibility writes (the planner itself is pure).

klikit replaces an entity's whole visibility map on every write and hides each provider the map
leaves out, so a write for one channel must carry every other channel's value too. For each
(entity, scope) with pending per-channel rows, :func:`gather_visibility` collects:

- menusync's *settled* values for that scope from the ledger (applied, not pending), in one
  MULTI/EXEC (:meth:`workers.ledger.Ledger.settled_values`);
- klikit's *current* map, read with :class:`workers.readback.MenuReader` (business mode for a
  business-level scope, store mode for a store), unless menusync holds a target for every
  provider klikit lists for the business (then nothing is unknown and nothing is read).

Never guessed: when the read fails transiently (or waits for the rate budget), or the menu does
not contain the entity, the scope's rows are held back this round and the flush retries later
(the usual backoff; after ``MENUSYNC_RETRY_MAX_AGE_S`` they are dead-lettered with the reason).
A read refused for good (for example 404 for an unknown store) dead-letters the rows at once; an
auth failure stops the business's flushes as a refused write does.

Store-mode ``getMenu`` reads the snapshot the last *publish* built, not the live store rows. So
for providers menusync holds no target for, a store-level write carries the values as last
published: a business-level or other-tool edit of such a provider that is not yet published is
not seen, and the store's override then keeps the published value for that provider. A store
that was never published (its snapshot is empty) shows nothing on any channel yet; its map is
composed on the business-level map it inherits (business-mode read). Providers menusync holds are
unaffected: their values come from the ledger.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from klikit.errors import KlikitError
from klikit.menu_tree import MenuShapeError, MenuSnapshot
from workers.budget import RateBudget
from workers.changes import Store
from workers.clock import now_ms
from workers.errors import FlushDeferred
from workers.ledger import PendingRow
from workers.outcomes import Action, Failures, RetryPolicy, classify, decide_outcome, retry_delay_ms
from workers.planner import ChannelValue, VisibilityScope, row_channel_values
from workers.providers import KLIKIT_PROVIDER_ID
from workers.readback import MenuReader
from workers.runtime import Runtime

log = structlog.get_logger("menusync.visibility")

#: Dead-letter code of rows whose entity klikit's menu does not show (after the retry age).
ENTITY_NOT_IN_MENU = "visibility_entity_not_in_menu"


@dataclass
class HeldBack:
    """Rows that cannot be planned this round, and why."""

    rows: list[PendingRow]
    code: str
    reason: str
    error: KlikitError | None = None


@dataclass
class VisibilityInputs:
    """The planner's visibility inputs, and the rows that must wait or be set aside."""

    shown: dict[VisibilityScope, dict[str, bool]] = field(default_factory=dict)
    settled: dict[VisibilityScope, list[ChannelValue]] = field(default_factory=dict)
    waiting: list[PendingRow] = field(default_factory=list)
    """Held back this round; the flush retries after ``defer_ms``."""
    defer_ms: int | None = None
    dead: list[HeldBack] = field(default_factory=list)
    """Held back for good: the flush dead-letters them."""
    auth_error: KlikitError | None = None

    def held_back_keys(self) -> set[str]:
        rows = [*self.waiting, *(r for d in self.dead for r in d.rows)]
        return {r.target.key() for r in rows}

    def wait(self, rows: Sequence[PendingRow], delay_ms: int) -> None:
        self.waiting.extend(rows)
        self.defer_ms = delay_ms if self.defer_ms is None else min(self.defer_ms, delay_ms)


def _scope_name(store: Store | None) -> str:
    return store.key() if store is not None else "*"


def gather_visibility(
    rt: Runtime, business_id: int, rows: Sequence[PendingRow], budget: RateBudget
) -> VisibilityInputs:
    """Settled values and klikit's current maps for the scopes of the pending visibility ``rows``."""
    out = VisibilityInputs()
    by_scope: dict[VisibilityScope, list[PendingRow]] = defaultdict(list)
    for row in rows:
        if row.target.field == "visibilities":
            by_scope[VisibilityScope.of(row.target)].append(row)
    if not by_scope:
        return out
    try:
        listed: frozenset[int] | None = rt.providers(business_id).ids
    except Exception as exc:  # klikit's list unreadable: every scope is read instead
        log.info("provider list unreadable; reading each map", business_id=business_id, error=type(exc).__name__)
        listed = None
    candidates = set(listed or ()) | set(rt.credential(business_id).provider_ids) | {KLIKIT_PROVIDER_ID}
    pending_providers: dict[VisibilityScope, set[int]] = {
        scope: {v.provider for r in scope_rows for v in row_channel_values(r)} for scope, scope_rows in by_scope.items()
    }
    wanted = {
        scope.target(business_id, p).key(): (scope, p)
        for scope, providers in pending_providers.items()
        for p in sorted(candidates | providers)
    }
    pending_keys = {r.target.key() for r in rows}
    for key, (value, version) in rt.ledger.settled_values(business_id, list(wanted)).items():
        if key in pending_keys or not isinstance(value, bool):
            continue
        scope, provider = wanted[key]
        out.settled.setdefault(scope, []).append(ChannelValue(provider, value, version))

    to_read: dict[Store | None, list[VisibilityScope]] = defaultdict(list)
    for scope in sorted(by_scope, key=VisibilityScope.sort_key):
        held = pending_providers[scope] | {v.provider for v in out.settled.get(scope, [])}
        if listed is not None and listed <= held:
            out.shown[scope] = {}  # every listed provider is menusync's: nothing unknown
        else:
            to_read[scope.store].append(scope)
    if not to_read:
        return out
    reader = MenuReader(rt.client(business_id), budget, purpose="compose")
    for store, scopes in sorted(to_read.items(), key=lambda kv: _scope_name(kv[0])):
        scope_rows = [r for s in scopes for r in by_scope[s]]
        snapshot = _read(rt, business_id, reader, store, scope_rows, out)
        if snapshot is not None and store is not None and len(snapshot) == 0:
            # Never published: the store's channels show nothing yet, and its rows are the business
            # rows it inherits. Compose on those rather than wait for a publish only a write can cause.
            snapshot = _read(rt, business_id, reader, None, scope_rows, out)
        if snapshot is None:
            continue
        for scope in scopes:
            values = snapshot.values(scope.level, scope.entity_id)
            failure_key = f"visibility-missing:{business_id}:{_scope_name(store)}:{scope.level}:{scope.entity_id}"
            if values is None or values.visibilities is None:
                where = "the business menu" if store is None else f"store {store.key()}'s published menu"
                _retry_or_dead(
                    rt,
                    out,
                    failure_key,
                    by_scope[scope],
                    ENTITY_NOT_IN_MENU,
                    f"klikit's getMenu does not show {scope.level} {scope.entity_id} in {where}, so its "
                    "visibility map cannot be composed without guessing (publish the store, then replay)",
                )
                continue
            rt.failures.clear(failure_key)
            out.shown[scope] = dict(values.visibilities)
    return out


def _read(
    rt: Runtime,
    business_id: int,
    reader: MenuReader,
    store: Store | None,
    scope_rows: list[PendingRow],
    out: VisibilityInputs,
) -> MenuSnapshot | None:
    failure_key = f"menu-read:{business_id}:{_scope_name(store)}"
    try:
        snapshot = reader.read(store)
    except FlushDeferred as deferred:  # the rate budget: wait, nothing failed
        out.wait(scope_rows, int(getattr(deferred, "delay", None) or 1000))
        return None
    except MenuShapeError as exc:
        _retry_or_dead(rt, out, failure_key, scope_rows, "not_envelope", f"getMenu answer unreadable: {exc}")
        return None
    except KlikitError as error:
        action = classify(error)
        if action is Action.RATE_LIMITED:
            wait_ms = decide_outcome(error, RetryPolicy.from_settings(rt.settings)).delay_ms
            reader.budget.penalize(wait_ms)
            out.wait(scope_rows, wait_ms)
        elif action is Action.RETRY:
            _retry_or_dead(rt, out, failure_key, scope_rows, error.code, f"getMenu failed: {error.message}", error)
        else:
            if action is Action.AUTH_STOP:
                out.auth_error = error
            out.dead.append(HeldBack(scope_rows, error.code, f"getMenu refused: {error.message}", error))
        log.warning(
            "menu read for a visibility map failed",
            business_id=business_id,
            scope=_scope_name(store),
            code=error.code,
            status=error.status,
            request_id=error.request_id,
        )
        return None
    rt.failures.clear(failure_key)
    return snapshot


def _retry_or_dead(
    rt: Runtime,
    out: VisibilityInputs,
    failure_key: str,
    rows: list[PendingRow],
    code: str,
    reason: str,
    error: KlikitError | None = None,
) -> None:
    """Hold ``rows`` back for a retry with backoff, or for good once they failed for the retry age."""
    attempts, first = rt.failures.record(failure_key, now_ms())
    delay = retry_delay_ms(RetryPolicy.from_settings(rt.settings), Failures(attempts, first, now_ms()), random.random())
    if delay is None:
        rt.failures.clear(failure_key)
        out.dead.append(HeldBack(rows, code, reason, error))
        return
    out.wait(rows, delay)
