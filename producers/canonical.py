"""The canonical change body (``workers.changes.ChangeBatch``): parse and expand, naming bad fields."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from producers.webhooks import PayloadError, payload_error
from workers.changes import Change, ChangeBatch


def expand_batch(batch: ChangeBatch) -> list[Change]:
    """Expand a canonical batch, naming the change that does not make valid targets."""
    out: list[Change] = []
    for i, change in enumerate(batch.changes):
        try:
            out.extend(change.expand(batch.business_id))
        except ValidationError as exc:
            raise payload_error(exc, prefix=f"changes[{i}]") from None
        except ValueError as exc:
            raise PayloadError(f"invalid field changes[{i}]: {exc}", f"changes[{i}]") from None
    return out


def parse_batch(body: bytes | str) -> list[Change]:
    """Validate a JSON body as a :class:`ChangeBatch` and expand it; raises :class:`PayloadError`."""
    try:
        batch = ChangeBatch.model_validate_json(body)
    except ValidationError as exc:
        raise payload_error(exc) from None
    return expand_batch(batch)


def batch_from_obj(obj: Any) -> list[Change]:
    try:
        batch = ChangeBatch.model_validate(obj)
    except ValidationError as exc:
        raise payload_error(exc) from None
    return expand_batch(batch)
