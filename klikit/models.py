"""Request bodies of the klikit partner API, with klikit's camelCase wire names.

Build them with Python names or wire names (both are accepted)::

    EnableUpdateRequest(ids=[101], is_enabled=False, zone_stores=[ZoneStore(brand_id=5297, branch_id=1293)])
    EnableUpdateRequest.model_validate({"ids": [101], "isEnabled": False})

and put them on the wire with :meth:`WireModel.wire` (aliases, ``None`` fields omitted).
``isEnabled`` is a required primitive wherever klikit reads a missing value as ``false``,
so it is always serialized.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from klikit.errors import ClientUsageError

KLIKIT_PROVIDER = "1"
"""klikit's own marketplace; its price is mandatory on every item."""

WEEKDAYS = frozenset(str(d) for d in range(7))
MAX_SKU_LENGTH = 50


class WireModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    def wire(self) -> dict[str, Any]:
        """The JSON-ready body: camelCase keys, ``None`` fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def _str_keys(value: Any) -> Any:
    """Provider / section / weekday ids may be given as ints; the wire keys are strings."""
    if isinstance(value, dict):
        return {str(k) if isinstance(k, int) and not isinstance(k, bool) else k: v for k, v in value.items()}
    return value


LocaleText = dict[str, str]
"""``{"en": "Margherita", "id": "Margherita"}``: ISO 639-1 code -> text."""


class ZoneStore(WireModel):
    """One store: a (brand, branch) pair."""

    brand_id: int = Field(alias="brandID", gt=0)
    branch_id: int = Field(alias="branchID", gt=0)


def _check_visibilities(value: dict[str, bool]) -> dict[str, bool]:
    for key in value:
        if not key.isdigit():
            raise ValueError(f"visibility keys are provider ids as strings, got {key!r}")
    return value


Visibilities = Annotated[dict[str, bool], BeforeValidator(_str_keys), AfterValidator(_check_visibilities)]
"""Provider id (as a string) -> visible. Providers missing from the map are hidden. Integer keys
are turned into strings; any other key that is not a provider id is refused."""


class EnableUpdateRequest(WireModel):
    """enableSections / enableCategories / enableItems. Omit ``zone_stores`` for the business row."""

    ids: list[int] = Field(min_length=1)
    is_enabled: bool = Field(alias="isEnabled")
    zone_stores: list[ZoneStore] | None = Field(default=None, alias="zoneStores")
    brand_ids_to_cascade: list[int] | None = Field(default=None, alias="brandIDsToCascade")
    is_cascade_to_modifier_groups: bool | None = Field(default=None, alias="isCascadeToModifierGroups")


class UpdateVisibilityRequest(WireModel):
    """setXxxVisibilities: a wholesale replacement of the map. Omit ``zone_stores`` for the business map."""

    visibilities: Visibilities
    zone_stores: list[ZoneStore] | None = Field(default=None, alias="zoneStores")


#: The most slots one weekday of a schedule may hold.
MAX_SLOTS_PER_DAY = 24


class TimeSlot(WireModel):
    """``900`` -> ``2200``: HHMM integers, the start before the end."""

    start_time: StrictInt = Field(alias="startTime", ge=0, le=2359)
    end_time: StrictInt = Field(alias="endTime", ge=0, le=2359)

    @field_validator("start_time", "end_time")
    @classmethod
    def _hhmm(cls, value: int) -> int:
        if value % 100 >= 60:
            raise ValueError(f"{value} is not a time of day as HHMM (hours 00-23, minutes 00-59)")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> TimeSlot:
        if self.start_time >= self.end_time:
            raise ValueError(f"startTime {self.start_time} must be before endTime {self.end_time}")
        return self


class DaySchedule(WireModel):
    """One weekday: at most 24 slots that do not overlap (klikit refuses the whole sync otherwise)."""

    disabled: StrictBool = False
    slots: list[TimeSlot] = Field(default_factory=list, max_length=MAX_SLOTS_PER_DAY)

    @model_validator(mode="after")
    def _no_overlap(self) -> DaySchedule:
        ordered = sorted(self.slots, key=lambda s: s.start_time)
        for before, after in pairwise(ordered):
            if after.start_time < before.end_time:
                raise ValueError(
                    f"slots {before.start_time}-{before.end_time} and {after.start_time}-{after.end_time} overlap"
                )
        return self


def _check_weekdays(value: dict[str, DaySchedule] | None) -> dict[str, DaySchedule] | None:
    if value is not None:
        bad = sorted(set(value) - WEEKDAYS)
        if bad:
            raise ValueError(f"availableTimes keys are weekdays '0'..'6', got {bad}")
    return value


AvailableTimes = Annotated[dict[str, DaySchedule], BeforeValidator(_str_keys), AfterValidator(_check_weekdays)]
"""Weekday ``"0"``..``"6"`` -> schedule. ``{}`` falls back to the section's business-level schedule.
Integer keys are turned into strings; any other key is refused."""


class SyncSection(WireModel):
    sequence: int = 0
    available_times: AvailableTimes = Field(default_factory=dict, alias="availableTimes")


class SyncRequest(WireModel):
    """syncMenuToStores and populateStores: section id -> (sequence, availableTimes) for each store."""

    stores: list[ZoneStore] = Field(min_length=1)
    sections: dict[str, SyncSection] = Field(min_length=1)
    field_include_on_sync: list[str] | None = Field(default=None, alias="fieldIncludeOnSync")

    @field_validator("sections", mode="before")
    @classmethod
    def _key_strings(cls, value: Any) -> Any:
        return _str_keys(value)

    @field_validator("sections")
    @classmethod
    def _section_ids(cls, value: dict[str, SyncSection]) -> dict[str, SyncSection]:
        for key in value:
            if not key.isdigit():
                raise ValueError(f"section keys are section ids, got {key!r}")
        return value


class PublishRequest(WireModel):
    """publishMenu: rebuild the store snapshots and ship them to ``provider_ids``."""

    stores: list[ZoneStore] = Field(min_length=1)
    provider_ids: list[int] = Field(min_length=1, alias="providerIDs")
    scheduled_at: datetime | None = Field(default=None, alias="scheduledAt")

    @field_validator("scheduled_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("scheduledAt must be timezone-aware")
        return value.astimezone(UTC)


class EachPrice(WireModel):
    price: int | float = Field(ge=0)
    take_away_price: int | float = Field(alias="takeAwayPrice", ge=0)


def _check_prices(prices: dict[str, dict[str, EachPrice]]) -> None:
    if KLIKIT_PROVIDER not in prices or not prices[KLIKIT_PROVIDER]:
        raise ClientUsageError('prices must include the klikit provider "1" with at least one currency')
    for provider, per_currency in prices.items():
        if not provider.isdigit():
            raise ClientUsageError(f"price keys are provider ids as strings, got {provider!r}")
        for currency in per_currency:
            if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
                raise ClientUsageError(f"currency {currency!r} is not an ISO 4217 code")


class CreateItemRequest(WireModel):
    """createItem (and modifier options, with ``only_modifier=True``)."""

    title: dict[str, str] = Field(min_length=1)
    vat: int | float = Field(ge=0)
    visibilities: Visibilities
    prices: dict[str, dict[str, EachPrice]]
    description: dict[str, str] | None = None
    sku: Annotated[str, Field(max_length=MAX_SKU_LENGTH)] | None = None
    only_modifier: bool | None = Field(default=None, alias="onlyModifier")
    prep_time: int | None = Field(default=None, alias="prepTime", ge=0)
    is_enabled: bool | None = Field(default=None, alias="isEnabled")
    from_api: bool | None = Field(default=None, alias="fromAPI")

    @field_validator("prices", mode="before")
    @classmethod
    def _key_strings(cls, value: Any) -> Any:
        return _str_keys(value)

    @model_validator(mode="after")
    def _klikit_price(self) -> CreateItemRequest:
        _check_prices(self.prices)
        return self


class CreateSectionRequest(WireModel):
    title: dict[str, str] = Field(min_length=1)
    description: dict[str, str] | None = None
    is_enabled: bool | None = Field(default=None, alias="isEnabled")
    sequence: int | None = None
    visibilities: Visibilities | None = None
    available_times: AvailableTimes | None = Field(default=None, alias="availableTimes")
    from_api: bool | None = Field(default=None, alias="fromAPI")


class CreateCategoryRequest(WireModel):
    title: dict[str, str] = Field(min_length=1)
    visibilities: Visibilities
    description: dict[str, str] | None = None
    is_enabled: bool | None = Field(default=None, alias="isEnabled")
    is_alc_beverages: bool | None = Field(default=None, alias="isAlcBeverages")
    is_age_restricted: bool | None = Field(default=None, alias="isAgeRestricted")
    is_halal: bool | None = Field(default=None, alias="isHalal")
    is_meal_for_one: bool | None = Field(default=None, alias="isMealForOne")
    from_api: bool | None = Field(default=None, alias="fromAPI")


class ModifierAttachment(WireModel):
    id: int
    sequence: int = 0


class LinkModifiersRequest(WireModel):
    """linkModifiersToGroup: attach modifier options (items with onlyModifier) to a group."""

    modifier_group_id: int = Field(alias="modifierGroupID")
    attach: list[ModifierAttachment]
    delete_modifier_ids: list[int] | None = Field(default=None, alias="deleteModifierIDs")
