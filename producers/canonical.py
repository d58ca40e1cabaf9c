"""The canonical change body (``workers.changes.ChangeBatch``): parse and expand, naming bad fields.

Parsing (:func:`read_batch`) is pure; the web app runs it on a worker thread, after counting the
targets the batch would expand into (:func:`count_targets`, capped). Expanding a batch with a
visibility change needs the business's channels (:class:`workers.providers.KnownProviders`):
a provider klikit does not list is refused with a 400 naming it, and ``"replace": true``
hides every listed provider the change does not name. ``providers`` is a callable
``business_id -> KnownProviders`` so that it is only asked when a batch needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from producers.webhooks import PayloadError, payload_error
from workers.changes import Change, ChangeBatch
from workers.providers import KnownProviders, ProvidersUnavailable, UnknownProviders

ProviderLookup = Callable[[int], KnownProviders]


def expand_batch(batch: ChangeBatch, providers: ProviderLookup | None = None) -> list[Change]:
    """Expand a canonical batch, naming the change (and provider) that does not make valid targets.

    Raises :class:`PayloadError` (400), or :class:`ProvidersUnavailable` when a ``replace``
    change needs klikit's provider list and only the fallback is known.
    """
    known = providers(batch.business_id) if providers is not None and batch.needs_providers() else None
    out: list[Change] = []
    for i, change in enumerate(batch.changes):
        if change.replace and known is not None and known.source == "none":
            field = f"changes[{i}].replace"
            raise PayloadError(
                f"invalid field {field}: replace hides every channel klikit lists, and business "
                f"{batch.business_id} has no klikit credential here to list them",
                field,
            )
        if change.replace and known is not None and not known.listed:
            raise ProvidersUnavailable(
                f"changes[{i}]: replace hides every channel klikit lists, and klikit's channel list "
                "cannot be read right now; retry later"
            )
        try:
            out.extend(change.expand(batch.business_id, known))
        except UnknownProviders as exc:
            field = f"changes[{i}].visibilities.{exc.unknown[0]}"
            raise PayloadError(f"invalid field {field}: {exc}", field) from None
        except ValidationError as exc:
            raise payload_error(exc, prefix=f"changes[{i}]") from None
        except ValueError as exc:
            raise PayloadError(f"invalid field changes[{i}]: {exc}", f"changes[{i}]") from None
    return out


class TooManyTargets(PayloadError):
    """The batch would expand into more targets than one request may record."""

    def __init__(self, count: int, cap: int) -> None:
        super().__init__(
            f"the changes expand into {count} targets (entity ids x stores x channels); at most {cap} are "
            "accepted per request (MENUSYNC_MAX_TARGETS_PER_REQUEST): split the request",
            "changes",
        )
        self.count = count
        self.cap = cap


#: A ``replace`` visibility change is counted as this many channels before the provider list is read.
REPLACE_CHANNELS_COUNTED = 16


def count_targets(batch: ChangeBatch) -> int:
    """How many targets the batch expands into, counted before expanding it (so before any cost)."""
    total = 0
    for c in batch.changes:
        scopes = max(1, len({(s.brand_id, s.branch_id) for s in c.stores or []}))
        channels = 1
        if c.kind == "visibility":
            channels = max(len(c.visibilities or {}), REPLACE_CHANNELS_COUNTED if c.replace else 1)
        total += len(set(c.entity_ids)) * scopes * channels
    return total


def read_batch(body: bytes | str, max_targets: int | None = None) -> ChangeBatch:
    """Validate a JSON body as a :class:`ChangeBatch`; raises :class:`PayloadError`
    (:class:`TooManyTargets` when it would expand into more than ``max_targets``)."""
    try:
        batch = ChangeBatch.model_validate_json(body)
    except ValidationError as exc:
        raise payload_error(exc) from None
    if max_targets is not None:
        count = count_targets(batch)
        if count > max_targets:
            raise TooManyTargets(count, max_targets)
    return batch


def parse_batch(
    body: bytes | str, providers: ProviderLookup | None = None, max_targets: int | None = None
) -> list[Change]:
    """Validate a JSON body as a :class:`ChangeBatch` and expand it; raises :class:`PayloadError`."""
    return expand_batch(read_batch(body, max_targets), providers)


def batch_from_obj(obj: Any, providers: ProviderLookup | None = None) -> list[Change]:
    try:
        batch = ChangeBatch.model_validate(obj)
    except ValidationError as exc:
        raise payload_error(exc) from None
    return expand_batch(batch, providers)
