"""Reading klikit's menu tree (``getMenu``) into the values menusync writes. Pure.

The reference documents the tree as ``data.menu.sections[]``; in store mode each section
carries ``categories[]``, in business mode ``linkedCategories[]``; categories carry
``items[]``, items ``modifierGroups[]``, groups ``modifiers[]``. Reads say ``enabled``
where writes say ``isEnabled``. Unknown fields are ignored; an entity that appears more
than once (a category linked into two sections) keeps its first reading.

:func:`parse_menu` turns that tree into a :class:`MenuSnapshot`: per (level, entity id)
the entity's ``enabled`` flag, ``visibilities`` map and (sections only) ``available_times``,
in the same canonical shapes the ledger stores, so the two compare with ``==``.

:func:`decode_menu_answer` reads a whole ``getMenu`` answer (the envelope's bytes) straight into a
snapshot: a store's menu is a few hundred kB, and decoding only the fields read (ids, flags,
visibility maps, times and the child lists) skips the titles, prices and images that are most of
it. It answers ``None`` for any answer not of the usual shape, and the caller then decodes it the
general way and walks it with :func:`parse_menu`: both give the same snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

#: Child list per level, in the order the tree nests them.
_CHILDREN: dict[str, tuple[str, ...]] = {
    "section": ("categories", "linkedCategories"),
    "category": ("items",),
    "item": ("modifierGroups",),
    "modifier_group": ("modifiers",),
}
_CHILD_LEVEL = {"section": "category", "category": "item", "item": "modifier_group", "modifier_group": "modifier"}


class MenuShapeError(ValueError):
    """The answer is not a menu tree menusync can read (no ``menu.sections`` list)."""


@dataclass(frozen=True)
class EntityValues:
    """What klikit shows for one entity (``None``: the field was absent or unreadable)."""

    enabled: bool | None = None
    visibilities: dict[str, bool] | None = None
    available_times: dict[str, Any] | None = None

    def get(self, field_name: str) -> Any:
        return getattr(self, field_name)

    def visible_on(self, provider_id: int) -> bool | None:
        """Whether klikit shows the entity on that channel: a provider absent from the map is
        hidden (``False``); ``None`` when the map itself was absent or unreadable."""
        if self.visibilities is None:
            return None
        return bool(self.visibilities.get(str(provider_id), False))


@dataclass(frozen=True)
class MenuSnapshot:
    """One menu read: per (level, entity id), the values klikit shows."""

    entities: Mapping[tuple[str, int], EntityValues] = field(default_factory=dict)

    def values(self, level: str, entity_id: int) -> EntityValues | None:
        """What klikit shows for the entity, or ``None`` if the menu does not contain it."""
        return self.entities.get((level, entity_id))

    def __len__(self) -> int:
        return len(self.entities)


def canonical_visibilities(raw: Any) -> dict[str, bool] | None:
    """A visibility map with provider-id string keys in numeric order, or ``None`` if not a map."""
    if not isinstance(raw, Mapping):
        return None
    out: dict[str, bool] = {}
    for provider, flag in raw.items():
        text = str(provider)
        if not text.isdigit() or not isinstance(flag, bool):
            continue
        out[str(int(text))] = flag
    return dict(sorted(out.items(), key=lambda kv: int(kv[0])))


def canonical_available_times(raw: Any) -> dict[str, Any] | None:
    """A weekday -> ``{disabled, slots[{startTime, endTime}]}`` map, or ``None`` if unreadable."""
    if not isinstance(raw, Mapping):
        return None
    days: dict[str, Any] = {}
    for day, schedule in raw.items():
        if str(day) not in {"0", "1", "2", "3", "4", "5", "6"} or not isinstance(schedule, Mapping):
            return None
        slots = []
        for slot in schedule.get("slots") or []:
            if not isinstance(slot, Mapping):
                return None
            slots.append({"startTime": slot.get("startTime"), "endTime": slot.get("endTime")})
        days[str(day)] = {"disabled": bool(schedule.get("disabled", False)), "slots": slots}
    return dict(sorted(days.items()))


def _read_entity(level: str, node: Mapping[str, Any]) -> EntityValues:
    enabled = node.get("enabled")
    return EntityValues(
        enabled=enabled if isinstance(enabled, bool) else None,
        visibilities=canonical_visibilities(node.get("visibilities")),
        available_times=canonical_available_times(node.get("availableTimes")) if level == "section" else None,
    )


def _walk(level: str, nodes: Iterable[Any], out: dict[tuple[str, int], EntityValues]) -> None:
    for node in nodes:
        if not isinstance(node, Mapping):
            continue
        entity_id = node.get("id")
        if isinstance(entity_id, bool) or not isinstance(entity_id, int):
            continue
        key = (level, entity_id)
        if key not in out:  # a repeat (a modifier group on many items) keeps its first reading, unread
            out[key] = _read_entity(level, node)
        child_level = _CHILD_LEVEL.get(level)
        if child_level is None:
            continue
        for name in _CHILDREN[level]:
            children = node.get(name)
            if isinstance(children, list):
                _walk(child_level, children, out)


def parse_menu(data: Any) -> MenuSnapshot:
    """Parse a ``getMenu`` answer's ``data`` (store or business mode)."""
    menu = data.get("menu") if isinstance(data, Mapping) else None
    sections = menu.get("sections") if isinstance(menu, Mapping) else None
    if not isinstance(sections, list):
        raise MenuShapeError("getMenu answer has no menu.sections list")
    out: dict[tuple[str, int], EntityValues] = {}
    _walk("section", sections, out)
    return MenuSnapshot(out)


class _Node(msgspec.Struct):
    """One entity of the tree, any level: the fields read, the child lists; the rest is skipped."""

    id: Any = None
    enabled: Any = None
    visibilities: Any = None
    availableTimes: Any = None
    categories: list[_Node] | None = None
    linkedCategories: list[_Node] | None = None
    items: list[_Node] | None = None
    modifierGroups: list[_Node] | None = None
    modifiers: list[_Node] | None = None


class _Menu(msgspec.Struct):
    sections: list[_Node] | None = None


class _Data(msgspec.Struct):
    menu: _Menu | None = None


class _Answer(msgspec.Struct):
    data: _Data | None = None
    request_id: Any = None


_ANSWER = msgspec.json.Decoder(_Answer)


def decode_menu_answer(content: bytes) -> tuple[MenuSnapshot, str | None] | None:
    """A ``getMenu`` answer's snapshot and ``request_id`` (``None`` unless a string), or ``None``
    when the answer is not of the usual shape (not JSON, a child list holding a non-object, no
    ``menu.sections`` list): then :func:`parse_menu` on the generally decoded ``data`` decides."""
    try:
        answer = _ANSWER.decode(content)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if answer.data is None or answer.data.menu is None or answer.data.menu.sections is None:
        return None
    out: dict[tuple[str, int], EntityValues] = {}
    _walk_nodes("section", answer.data.menu.sections, out)
    request_id = answer.request_id if isinstance(answer.request_id, str) and answer.request_id else None
    return MenuSnapshot(out), request_id


def _walk_nodes(level: str, nodes: list[_Node], out: dict[tuple[str, int], EntityValues]) -> None:
    """:func:`_walk` over decoded nodes: the same rules, the same snapshot."""
    child_level = _CHILD_LEVEL.get(level)
    for node in nodes:
        entity_id = node.id
        if isinstance(entity_id, bool) or not isinstance(entity_id, int):
            continue
        key = (level, entity_id)
        if key not in out:
            enabled = node.enabled
            out[key] = EntityValues(
                enabled=enabled if isinstance(enabled, bool) else None,
                visibilities=canonical_visibilities(node.visibilities),
                available_times=canonical_available_times(node.availableTimes) if level == "section" else None,
            )
        if child_level is None:
            continue
        for name in _CHILDREN[level]:
            children = getattr(node, name)
            if children is not None:
                _walk_nodes(child_level, children, out)
