"""The canonical change body (``workers.changes.ChangeBatch``): parse and expand, naming bad fields.

Parsing (:func:`read_batch`) is pure and runs on the event loop. Expanding a batch with a
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


def read_batch(body: bytes | str) -> ChangeBatch:
    """Validate a JSON body as a :class:`ChangeBatch`; raises :class:`PayloadError`."""
    try:
        return ChangeBatch.model_validate_json(body)
    except ValidationError as exc:
        raise payload_error(exc) from None


def parse_batch(body: bytes | str, providers: ProviderLookup | None = None) -> list[Change]:
    """Validate a JSON body as a :class:`ChangeBatch` and expand it; raises :class:`PayloadError`."""
    return expand_batch(read_batch(body), providers)


def batch_from_obj(obj: Any, providers: ProviderLookup | None = None) -> list[Change]:
    try:
        batch = ChangeBatch.model_validate(obj)
    except ValidationError as exc:
        raise payload_error(exc) from None
    return expand_batch(batch, providers)
