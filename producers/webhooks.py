"""POS webhook payloads -> changes (pure parsing; no I/O).

Square ``inventory.count.updated`` (one event may carry several counts)::

    {"merchant_id": "5S9MXCS9Y99KK", "type": "inventory.count.updated",
     "event_id": "df5f3813-a913-45a1-94e9-fdc3f7d5e3b6", "created_at": "2019-10-29T18:38:45.455006797Z",
     "data": {"type": "inventory_counts", "id": "84e4ac73-...",
              "object": {"inventory_counts": [
                  {"calculated_at": "2019-10-29T18:38:45.10296Z", "catalog_object_id": "FGQ5JJWT2PYTHF35CKZ4DFUR",
                   "catalog_object_type": "ITEM_VARIATION", "location_id": "YYQR0AH9WKHE8",
                   "quantity": "1", "state": "IN_STOCK"}]}}}

Only ``IN_STOCK`` counts say what can be sold; the other states (``SOLD``, ``WASTE``...) are ignored.
The change time is the count's ``calculated_at``.

Shopify ``inventory_levels/update`` (topic in ``X-Shopify-Topic``)::

    {"inventory_item_id": 271878346596884015, "location_id": 24826418, "available": 6,
     "updated_at": "2021-12-31T19:00:00-05:00",
     "admin_graphql_api_id": "gid://shopify/InventoryLevel/24826418?inventory_item_id=271878346596884015"}

``available`` is ``null`` for an untracked item, which sells without limit: it counts as in stock.

Quantity at or below ``stock_threshold`` disables the mapped entities at the mapped stores; above
it enables them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from producers.mapping import EntityRef, StoreRef, availability_change, pair_up
from workers.changes import ENABLE_LEVELS, Change, check_event_time, ms_from_datetime

SQUARE_INVENTORY_EVENT = "inventory.count.updated"
SHOPIFY_INVENTORY_TOPIC = "inventory_levels/update"


class PayloadError(ValueError):
    """A body that is not valid JSON or does not match the schema; ``field`` names the culprit."""

    def __init__(self, message: str, field: str | None = None, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.errors = errors or ([{"field": field, "message": message}] if field else [])


def _loc(loc: tuple[int | str, ...], prefix: str = "") -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def payload_error(exc: ValidationError, prefix: str = "") -> PayloadError:
    """A :class:`PayloadError` naming every invalid field (no input values: they may be large)."""
    errors: list[dict[str, str]] = []
    for err in exc.errors(include_url=False, include_input=False):
        if err["type"] == "json_invalid":
            return PayloadError(f"body is not valid JSON: {err['msg']}", "body")
        errors.append({"field": _loc(tuple(err["loc"]), prefix), "message": str(err["msg"])})
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    return PayloadError(f"invalid field {first['field']}: {first['message']}", first["field"], errors)


# Square -----------------------------------------------------------------------------------------


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SquareEnvelope(_Lenient):
    type: str = Field(min_length=1)
    event_id: str = Field(min_length=1, max_length=200)
    merchant_id: str | None = None
    created_at: AwareDatetime | None = None
    data: dict[str, Any] | None = None


class SquareCount(_Lenient):
    catalog_object_id: str = Field(min_length=1, max_length=200)
    location_id: str = Field(min_length=1, max_length=200)
    state: str = Field(min_length=1)
    quantity: Decimal
    calculated_at: AwareDatetime
    catalog_object_type: str | None = None

    @field_validator("calculated_at")
    @classmethod
    def _not_future(cls, value: AwareDatetime) -> AwareDatetime:
        check_event_time(ms_from_datetime(value), "calculated_at")
        return value


class SquareCountsObject(_Lenient):
    inventory_counts: list[SquareCount]


class SquareInventoryData(_Lenient):
    type: str | None = None
    id: str | None = None
    object: SquareCountsObject


class SquareInventoryEvent(SquareEnvelope):
    data: SquareInventoryData  # type: ignore[assignment]


def parse_square(body: bytes) -> SquareEnvelope:
    """The envelope of any Square event, or the full inventory event when the type is inventory."""
    try:
        envelope = SquareEnvelope.model_validate_json(body)
        if envelope.type == SQUARE_INVENTORY_EVENT:
            return SquareInventoryEvent.model_validate_json(body)
        return envelope
    except ValidationError as exc:
        raise payload_error(exc) from None


# Shopify ----------------------------------------------------------------------------------------


class ShopifyInventoryLevel(_Lenient):
    inventory_item_id: int = Field(gt=0)
    location_id: int = Field(gt=0)
    available: int | None
    updated_at: AwareDatetime
    admin_graphql_api_id: str | None = None

    @field_validator("updated_at")
    @classmethod
    def _not_future(cls, value: AwareDatetime) -> AwareDatetime:
        check_event_time(ms_from_datetime(value), "updated_at")
        return value


def parse_shopify(body: bytes) -> ShopifyInventoryLevel:
    try:
        return ShopifyInventoryLevel.model_validate_json(body)
    except ValidationError as exc:
        raise payload_error(exc) from None


# Building changes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StockLevel:
    """One (POS item, POS location) stock reading."""

    item_id: str
    location_id: str
    quantity: Decimal | None  # None: not tracked (always available)
    occurred_at_ms: int


@dataclass
class Built:
    changes: list[Change]
    unmapped: list[str]  # human-readable reasons, one per reading that mapped to nothing


def in_stock(quantity: Decimal | None, threshold: float) -> bool:
    return quantity is None or quantity > Decimal(str(threshold))


def square_levels(event: SquareInventoryEvent) -> list[StockLevel]:
    return [
        StockLevel(c.catalog_object_id, c.location_id, c.quantity, ms_from_datetime(c.calculated_at))
        for c in event.data.object.inventory_counts
        if c.state == "IN_STOCK"
    ]


def shopify_levels(level: ShopifyInventoryLevel) -> list[StockLevel]:
    quantity = None if level.available is None else Decimal(level.available)
    return [
        StockLevel(str(level.inventory_item_id), str(level.location_id), quantity, ms_from_datetime(level.updated_at))
    ]


def build_changes(
    change_id: str,
    levels: list[StockLevel],
    entities: dict[str, list[EntityRef]],
    stores: dict[str, list[StoreRef]],
    threshold: float,
    until_ms: int | None = None,
) -> Built:
    """One availability change per (entity, store) of the same business, for every reading."""
    built = Built([], [])
    for level in levels:
        ents = entities.get(level.item_id, [])
        sts = stores.get(level.location_id, [])
        pairs = pair_up(ents, sts)
        enabled = in_stock(level.quantity, threshold)
        usable = [(e, s) for e, s in pairs if e.level in ENABLE_LEVELS]
        if not usable:
            if not ents:
                built.unmapped.append(f"item {level.item_id} has no mapping")
            elif not sts:
                built.unmapped.append(f"location {level.location_id} has no mapping")
            elif not pairs:
                built.unmapped.append(
                    f"item {level.item_id} and location {level.location_id} map to different businesses"
                )
            else:
                built.unmapped.append(f"item {level.item_id} maps only to levels without an enable flag")
            continue
        for entity, store in usable:
            built.changes.append(availability_change(change_id, entity, store, enabled, level.occurred_at_ms, until_ms))
    return built
