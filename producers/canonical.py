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


class TooManyTargets(PayloadError):
    """The batch would expand into more targets than one request may record."""

    def __init__(self, count: int, cap: int) -> None:
        super().__init__(
            f"the changes expand into {count} targets (entity ids x stores); at most {cap} are accepted per request "
            "(MENUSYNC_MAX_TARGETS_PER_REQUEST): split the request",
            "changes",
        )
        self.count = count
        self.cap = cap


def count_targets(batch: ChangeBatch) -> int:
    """How many targets the batch expands into, counted before expanding it."""
    return sum(
        len(set(c.entity_ids)) * max(1, len({(s.brand_id, s.branch_id) for s in c.stores or []})) for c in batch.changes
    )


def parse_batch(body: bytes | str, max_targets: int | None = None) -> list[Change]:
    """Validate a JSON body as a :class:`ChangeBatch` and expand it; raises :class:`PayloadError`
    (:class:`TooManyTargets` when it would expand into more than ``max_targets``)."""
    try:
        batch = ChangeBatch.model_validate_json(body)
    except ValidationError as exc:
        raise payload_error(exc) from None
    if max_targets is not None:
        count = count_targets(batch)
        if count > max_targets:
            raise TooManyTargets(count, max_targets)
    return expand_batch(batch)


def batch_from_obj(obj: Any) -> list[Change]:
    try:
        batch = ChangeBatch.model_validate(obj)
    except ValidationError as exc:
        raise payload_error(exc) from None
    return expand_batch(batch)
