"""Changes and targets: the vocabulary shared by producers and workers.

A *target* is one field of one klikit entity at one scope (business-wide or one
store). A *change* sets a target's desired value at a *version*: the source's
event time in milliseconds, tie-broken by an ingest sequence. Versions are
encoded as fixed-width strings so that Redis Lua compares them as text.

Visibility is per channel. klikit's ``setXxxVisibilities`` replaces an entity's whole
map, and a provider missing from the map is hidden; menusync therefore never stores a
map. A visibility target is one (entity, scope, *provider*) and its value is one
boolean (visible on that channel or not), so latest-wins holds per channel: "hide on
GrabFood" and "hide on ShopeeFood" are two targets and both hold, in any order. The
planner composes the whole map klikit needs at write time (``workers.planner``).

Target keys (``Target.key()``, the ledger's hash fields)::

    business|scope|level|entity|field              enabled, available_times
    business|scope|level|entity|visibilities|P      visible on provider P (bool)

``scope`` is ``brand:branch`` or ``*`` (business level). A five-part ``visibilities``
key with no provider is a whole-map target recorded before visibility became per
channel: it is still read and flushed (its map names the providers it sets, as a
per-channel change would) but never created any more.

A canonical visibility change names the providers it changes; ``"replace": true``
also hides, on purpose, every provider klikit lists that the map does not name
(:meth:`CanonicalChange.expand` turns that into one concrete target per provider).
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator, model_validator

from config.settings import get_settings
from klikit.models import DaySchedule
from workers.providers import KnownProviders, UnknownProviders

Level = Literal["section", "category", "item", "modifier_group", "modifier"]
TargetField = Literal["enabled", "visibilities", "available_times"]
LEVELS: tuple[Level, ...] = ("section", "category", "item", "modifier_group", "modifier")
FIELDS: tuple[TargetField, ...] = ("enabled", "visibilities", "available_times")

#: Levels that can be enabled: klikit's bulk enable covers sections, categories and items,
#: and modifiers are items (``onlyModifier``). Modifier groups have no enable flag of their
#: own; hide them per channel with a visibility change instead.
ENABLE_LEVELS: frozenset[str] = frozenset({"section", "category", "item", "modifier"})

#: Ids are JSON numbers: keep them exact in every client (and in Redis Lua, which uses doubles).
MAX_ID = 2**53 - 1

#: How far ahead of this host's clock an event time may be. Versions are event times, so a
#: change from the far future would win every later comparison and pin its target for good.
MAX_FUTURE_SKEW_MS = 5 * 60 * 1000

_VERSION_MS_DIGITS = 15
_VERSION_SEQ_DIGITS = 12


def make_version(event_ms: int, seq: int) -> str:
    """Encode (event time ms, ingest sequence) as a fixed-width, text-comparable version."""
    if event_ms < 0 or seq < 0:
        raise ValueError("version parts must be non-negative")
    return f"{event_ms:0{_VERSION_MS_DIGITS}d}.{seq:0{_VERSION_SEQ_DIGITS}d}"


def version_ms(version: str) -> int:
    """The event time (ms) of a version string."""
    return int(version.split(".", 1)[0])


class Store(BaseModel):
    """One klikit store: a (brand, branch) pair."""

    model_config = ConfigDict(frozen=True)
    brand_id: int = Field(gt=0)
    branch_id: int = Field(gt=0)

    def key(self) -> str:
        return f"{self.brand_id}:{self.branch_id}"

    @classmethod
    def from_key(cls, key: str) -> Store:
        brand, branch = key.split(":")
        return cls(brand_id=int(brand), branch_id=int(branch))


class Target(BaseModel):
    """One field of one entity at one scope (``store=None`` is business level).

    ``provider`` is the channel of a ``visibilities`` target (its value: visible there or
    not); ``None`` for every other field, and for a legacy whole-map visibility target.
    """

    model_config = ConfigDict(frozen=True)
    business_id: int = Field(gt=0)
    store: Store | None
    level: Level
    entity_id: int = Field(gt=0)
    field: TargetField
    provider: int | None = Field(default=None, gt=0, le=MAX_ID)

    @model_validator(mode="after")
    def _provider_only_for_visibility(self) -> Target:
        if self.provider is not None and self.field != "visibilities":
            raise ValueError("only a visibilities target names a provider")
        return self

    def key(self) -> str:
        """Stable text key: ``business|scope|level|entity|field[|provider]``; scope ``*`` is business level."""
        scope = self.store.key() if self.store else "*"
        base = f"{self.business_id}|{scope}|{self.level}|{self.entity_id}|{self.field}"
        return base if self.provider is None else f"{base}|{self.provider}"

    @classmethod
    def from_key(cls, key: str) -> Target:
        parts = key.split("|")
        if len(parts) == 6:
            business, scope, level, entity, field, provider = parts
        elif len(parts) == 5:
            business, scope, level, entity, field = parts
            provider = ""
        else:
            raise ValueError(f"not a target key: {key!r}")
        return cls(
            business_id=int(business),
            store=None if scope == "*" else Store.from_key(scope),
            level=level,  # type: ignore[arg-type]
            entity_id=int(entity),
            field=field,  # type: ignore[arg-type]
            provider=int(provider) if provider else None,
        )

    def is_channel_visibility(self) -> bool:
        """A per-channel visibility target (value: one boolean)."""
        return self.field == "visibilities" and self.provider is not None


def canonical_value(field: TargetField, value: Any) -> Any:
    """Validate and normalise a desired value for ``field`` (raises ``ValueError``)."""
    if field == "enabled":
        if not isinstance(value, bool):
            raise ValueError("enabled must be a boolean")
        return value
    if field == "visibilities":
        if not isinstance(value, dict) or not value:
            raise ValueError("visibilities must be a non-empty map of provider id to boolean")
        out: dict[str, bool] = {}
        for provider, flag in value.items():
            if not str(provider).isdigit() or not isinstance(flag, bool):
                raise ValueError("visibilities maps provider ids (digits) to booleans")
            out[str(int(provider))] = flag
        return dict(sorted(out.items(), key=lambda kv: int(kv[0])))
    if field == "available_times":
        if not isinstance(value, dict):
            raise ValueError("available_times must be a map of weekday 0-6 to a day schedule")
        days: dict[str, Any] = {}
        for day, schedule in value.items():
            if str(day) not in {"0", "1", "2", "3", "4", "5", "6"}:
                raise ValueError(f"available_times weekday {day!r} is not 0-6")
            days[str(day)] = DaySchedule.model_validate(schedule).wire()
        return dict(sorted(days.items()))
    raise ValueError(f"unknown field {field!r}")


class Change(BaseModel):
    """One desired value for one target, as recorded in the ledger.

    ``id`` names the source event (for tracing and dead letters); ``occurred_at_ms``
    is the source's event time; the ledger assigns the version on record.
    ``until``: at that time the target is enabled again unless a newer change came first.
    """

    model_config = ConfigDict(frozen=True)
    id: str = Field(min_length=1, max_length=200)
    target: Target
    value: Any
    occurred_at_ms: int = Field(ge=0)
    until_ms: int | None = None

    @model_validator(mode="after")
    def _check_value(self) -> Change:
        check_event_time(self.occurred_at_ms, "occurred_at")
        if self.target.field == "enabled" and self.target.level not in ENABLE_LEVELS:
            raise ValueError(f"{self.target.level} has no enable flag; use a visibility change")
        if self.target.field == "available_times" and self.target.level != "section":
            raise ValueError("schedules (available_times) apply to sections only")
        if self.target.is_channel_visibility():
            if not isinstance(self.value, bool):
                raise ValueError("a per-channel visibility is a boolean (visible on that provider or not)")
        else:
            object.__setattr__(self, "value", canonical_value(self.target.field, self.value))
        if self.until_ms is not None:
            if self.target.field != "enabled":
                raise ValueError("until applies to availability (enabled) changes only")
            check_until(self.occurred_at_ms, self.until_ms)
        return self

    def value_json(self) -> str:
        if isinstance(self.value, bool):  # most changes: the JSON of a boolean without the encoder
            return "true" if self.value else "false"
        return json.dumps(self.value, sort_keys=True, separators=(",", ":"))


def check_event_time(event_ms: int, field: str) -> None:
    """Refuse an event time before 1970, or more than :data:`MAX_FUTURE_SKEW_MS` ahead of this host's clock."""
    if event_ms < 0:
        raise ValueError(f"{field} lies before 1970")
    if event_ms > time.time() * 1000 + MAX_FUTURE_SKEW_MS:
        raise ValueError(f"{field} is more than {MAX_FUTURE_SKEW_MS // 60_000} minutes in the future")


def check_until(occurred_ms: int, until_ms: int) -> None:
    """``until`` must lie after the event and at most ``MENUSYNC_MAX_UNTIL_DAYS`` ahead of this host's clock."""
    if until_ms <= occurred_ms:
        raise ValueError("until must lie after occurred_at")
    max_days = get_settings().max_until_days
    if until_ms > time.time() * 1000 + max_days * 86_400_000:
        raise ValueError(f"until is more than {max_days} days ahead (MENUSYNC_MAX_UNTIL_DAYS)")


def ms_from_datetime(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("timestamps must carry a timezone")
    return int(value.timestamp() * 1000)


class CanonicalStore(BaseModel):
    model_config = ConfigDict(extra="forbid")
    brand_id: StrictInt = Field(gt=0, le=MAX_ID)
    branch_id: StrictInt = Field(gt=0, le=MAX_ID)


class CanonicalChange(BaseModel):
    """One change of the canonical ``POST /v1/changes`` body (README, "Public interfaces")."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=200)
    kind: Literal["availability", "visibility", "schedule"]
    level: Level
    entity_ids: list[StrictInt] = Field(min_length=1, max_length=1000)
    enabled: StrictBool | None = None
    visibilities: dict[str, StrictBool] | None = Field(default=None, max_length=64)
    replace: StrictBool = False
    available_times: dict[str, DaySchedule] | None = None
    stores: list[CanonicalStore] | None = Field(default=None, max_length=1000)
    occurred_at: datetime
    until: datetime | None = None

    @field_validator("entity_ids")
    @classmethod
    def _positive_ids(cls, ids: list[int]) -> list[int]:
        if any(i <= 0 or i > MAX_ID for i in ids):
            raise ValueError(f"entity ids must be between 1 and {MAX_ID}")
        return ids

    @model_validator(mode="after")
    def _kind_matches(self) -> CanonicalChange:
        need = {"availability": "enabled", "visibility": "visibilities", "schedule": "available_times"}[self.kind]
        for name in ("enabled", "visibilities", "available_times"):
            present = getattr(self, name) is not None
            if name == need and not present:
                raise ValueError(f"kind {self.kind} requires {name}")
            if name != need and present:
                raise ValueError(f"kind {self.kind} does not take {name}")
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must carry a timezone")
        check_event_time(ms_from_datetime(self.occurred_at), "occurred_at")
        if self.until is not None:
            if self.kind != "availability":
                raise ValueError("until applies to availability changes only")
            if self.until.tzinfo is None:
                raise ValueError("until must carry a timezone")
            check_until(ms_from_datetime(self.occurred_at), ms_from_datetime(self.until))
        if self.replace and self.kind != "visibility":
            raise ValueError("replace applies to visibility changes only")
        if self.kind == "visibility" and not self.visibilities and not self.replace:
            raise ValueError("visibilities must name at least one provider (or set replace: true to hide everywhere)")
        if self.kind == "schedule" and self.level != "section":
            raise ValueError("schedule changes apply to sections only")
        if self.kind == "availability" and self.level not in ENABLE_LEVELS:
            raise ValueError(f"{self.level} has no enable flag; use a visibility change")
        return self

    def channel_values(self, providers: KnownProviders | None) -> dict[int, bool]:
        """Provider id -> visible, for every channel this visibility change sets.

        The named providers must be ones klikit lists (``providers``; ``None`` skips the
        check). With ``replace`` every listed provider the map does not name is hidden, so
        ``providers`` is required then. Raises :class:`UnknownProviders` naming the ids.
        """
        named: dict[int, bool] = {}
        for text, visible in (self.visibilities or {}).items():
            if not text.isdigit() or int(text) <= 0 or int(text) > MAX_ID:
                raise ValueError(f"visibilities key {text[:20]!r} is not a provider id (a positive integer)")
            named[int(text)] = visible
        if providers is not None:
            unknown = sorted(set(named) - providers.ids)
            if unknown:
                raise UnknownProviders(unknown, providers)
        if self.replace:
            if providers is None:
                raise ValueError("replace needs klikit's provider list")
            return {p: named.get(p, False) for p in sorted(providers.ids | set(named))}
        return dict(sorted(named.items()))

    def expand(self, business_id: int, providers: KnownProviders | None = None) -> list[Change]:
        """Expand into one :class:`Change` per (entity, store), and per provider for visibility."""
        scopes: list[Store | None] = (
            [Store(brand_id=s.brand_id, branch_id=s.branch_id) for s in self.stores] if self.stores else [None]
        )
        occurred = ms_from_datetime(self.occurred_at)
        until = ms_from_datetime(self.until) if self.until else None
        field: TargetField
        values: list[tuple[int | None, Any]]
        if self.kind == "availability":
            field, values = "enabled", [(None, self.enabled)]
        elif self.kind == "visibility":
            field = "visibilities"
            values = list(self.channel_values(providers).items())
        else:
            field = "available_times"
            values = [(None, {k: v.model_dump() for k, v in (self.available_times or {}).items()})]
        return [
            Change(
                id=self.id,
                target=Target(
                    business_id=business_id,
                    store=store,
                    level=self.level,
                    entity_id=entity,
                    field=field,
                    provider=provider,
                ),
                value=value,
                occurred_at_ms=occurred,
                until_ms=until,
            )
            for entity in dict.fromkeys(self.entity_ids)
            for store in dict.fromkeys(scopes)
            for provider, value in values
        ]


class ChangeBatch(BaseModel):
    """The canonical ``POST /v1/changes`` body."""

    model_config = ConfigDict(extra="forbid")
    business_id: StrictInt = Field(gt=0, le=MAX_ID)
    changes: list[CanonicalChange] = Field(min_length=1, max_length=1000)

    def expand(self, providers: KnownProviders | None = None) -> list[Change]:
        return [c for change in self.changes for c in change.expand(self.business_id, providers)]

    def needs_providers(self) -> bool:
        """Whether expanding this batch checks provider ids (it holds a visibility change)."""
        return any(c.kind == "visibility" for c in self.changes)
