"""POS ids -> klikit ids, kept in Redis under the key prefix.

Two kinds of mapping:

- **entity**: a POS item id of a source (Square catalog object id, Shopify inventory item id, a SKU)
  -> one or more klikit ``(business, level, entity id)``.
- **location**: a POS location id of a source (Square location id, Shopify location id, an
  inventory-stream location name) -> one or more klikit stores ``(business, brand, branch)``.

A POS event names an item and a location; it becomes one change per (entity, store) pair of the
same business.

Redis keys (``P`` is the configured prefix)::

    P:map:entity:<source>        hash  pos_id      -> JSON [[business_id, level, entity_id], ...]
    P:map:location:<source>      hash  location_id -> JSON [[business_id, brand_id, branch_id], ...]
    P:map:sku:<business>         hash  sku -> JSON [[level, entity_id], ...]   (built by ``mappings sync``)
    P:map:sku-manual:<business>  hash  sku -> JSON [[level, entity_id], ...]   (imported ``entity,sku`` rows)
    P:map:sku-businesses         set   businesses that have a SKU index

SKU rows are per business: a SKU is looked up in the imported rows first, then in the synced index.

CSV import format (``menusync mappings import FILE.csv``), one header line then one row per mapping::

    kind,source,pos_id,business_id,level,entity_id,brand_id,branch_id
    entity,square,FGQ5JJWT2PYTHF35CKZ4DFUR,398,item,101,,
    location,square,YYQR0AH9WKHE8,398,,,5297,1293
    entity,shopify,808950810,398,item,102,,
    location,shopify,655441491,398,,,5297,1293
    entity,sku,BURGER-CLASSIC,398,item,101,,
    location,inventory,KITCHEN-1,398,,,5297,1293

``kind`` is ``entity`` (needs ``level`` and ``entity_id``) or ``location`` (needs ``brand_id`` and
``branch_id``). ``source`` is a lower-case name (``square``, ``shopify``, ``sku``, ``inventory``...);
``sku`` entity rows feed the SKU lookup of the inventory stream, whose ``location`` field is looked
up under source ``inventory``. Blank lines and lines starting with ``#`` are skipped. Rows with the
same (kind, source, pos_id) accumulate; importing replaces the stored value of every pos id the file
names and leaves the others alone. The whole file is checked first; any error (reported with its
line number) writes nothing.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from config.redis import Keys
from workers.changes import LEVELS, Change, Level, Store, Target

CSV_COLUMNS = ("kind", "source", "pos_id", "business_id", "level", "entity_id", "brand_id", "branch_id")
_SOURCE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
SKU_SOURCE = "sku"
INVENTORY_LOCATION_SOURCE = "inventory"


@dataclass(frozen=True)
class EntityRef:
    business_id: int
    level: Level
    entity_id: int


@dataclass(frozen=True)
class StoreRef:
    business_id: int
    brand_id: int
    branch_id: int


def availability_change(
    change_id: str,
    entity: EntityRef,
    store: StoreRef,
    enabled: bool,
    occurred_at_ms: int,
    until_ms: int | None = None,
) -> Change:
    """The availability change a POS or inventory stock level means for one mapped (entity, store)."""
    return Change(
        id=change_id,
        target=Target(
            business_id=entity.business_id,
            store=Store(brand_id=store.brand_id, branch_id=store.branch_id),
            level=entity.level,
            entity_id=entity.entity_id,
            field="enabled",
        ),
        value=enabled,
        occurred_at_ms=occurred_at_ms,
        until_ms=until_ms,
    )


class MappingImportError(ValueError):
    """A mapping file is invalid; ``errors`` lists ``line N: ...`` messages."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


# Encoding ---------------------------------------------------------------------------------------


def _dumps(rows: Iterable[Sequence[Any]]) -> str:
    return json.dumps([list(r) for r in rows], separators=(",", ":"))


def decode_entities(raw: str | None) -> list[EntityRef]:
    if not raw:
        return []
    return [EntityRef(int(b), lv, int(e)) for b, lv, e in json.loads(raw)]


def decode_stores(raw: str | None) -> list[StoreRef]:
    if not raw:
        return []
    return [StoreRef(int(b), int(br), int(bn)) for b, br, bn in json.loads(raw)]


def decode_sku(business_id: int, raw: str | None) -> list[EntityRef]:
    if not raw:
        return []
    return [EntityRef(business_id, lv, int(e)) for lv, e in json.loads(raw)]


def pair_up(entities: Sequence[EntityRef], stores: Sequence[StoreRef]) -> list[tuple[EntityRef, StoreRef]]:
    """Every (entity, store) pair of the same business."""
    return [(e, s) for e in entities for s in stores if e.business_id == s.business_id]


# Redis access -----------------------------------------------------------------------------------


class Mappings:
    """Read and write the id mappings of one key prefix."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client: Any = client  # decode_responses=True: replies are str
        self.keys = keys

    def entity_key(self, source: str) -> str:
        return self.keys.group("map", "entity", source)

    def location_key(self, source: str) -> str:
        return self.keys.group("map", "location", source)

    def sku_key(self, business_id: int) -> str:
        return self.keys.group("map", "sku", business_id)

    def sku_manual_key(self, business_id: int) -> str:
        return self.keys.group("map", "sku-manual", business_id)

    @property
    def sku_businesses_key(self) -> str:
        return self.keys.group("map", "sku-businesses")

    # reads

    def entities(self, source: str, pos_id: str) -> list[EntityRef]:
        return decode_entities(self.client.hget(self.entity_key(source), pos_id))

    def stores(self, source: str, location_id: str) -> list[StoreRef]:
        return decode_stores(self.client.hget(self.location_key(source), location_id))

    def sku_businesses(self) -> list[int]:
        return sorted(int(b) for b in self.client.smembers(self.sku_businesses_key))

    def sku_entities(self, skus: Sequence[str], businesses: Sequence[int]) -> dict[tuple[str, int], list[EntityRef]]:
        """For each (sku, business): imported rows if any, else the synced index. One round trip."""
        out: dict[tuple[str, int], list[EntityRef]] = {}
        if not skus or not businesses:
            return out
        pipe = self.client.pipeline(transaction=False)
        for b in businesses:
            pipe.hmget(self.sku_manual_key(b), list(skus))
            pipe.hmget(self.sku_key(b), list(skus))
        results = pipe.execute()
        for i, b in enumerate(businesses):
            manual, synced = results[2 * i], results[2 * i + 1]
            for sku, m, s in zip(skus, manual, synced, strict=True):
                refs = decode_sku(b, m) or decode_sku(b, s)
                if refs:
                    out[(sku, b)] = refs
        return out

    def iter_mappings(self) -> Iterator[tuple[str, str, str, str]]:
        """(kind, source, pos_id, JSON value) of every stored mapping (for ``mappings list``)."""
        for kind in ("entity", "location"):
            prefix = self.keys.group("map", kind, "")
            for key in sorted(self.client.scan_iter(match=f"{prefix}*", count=500)):
                source = str(key)[len(prefix) :]
                for pos_id, value in sorted(self.client.hgetall(key).items()):
                    yield kind, source, pos_id, value
        for b in self.sku_businesses():
            for key, label in ((self.sku_manual_key(b), "sku-manual"), (self.sku_key(b), "sku")):
                for sku, value in sorted(self.client.hgetall(key).items()):
                    yield label, str(b), sku, value

    # writes

    def import_rows(self, rows: Sequence[MappingRow]) -> dict[str, int]:
        """Store validated rows (one transaction). Answers counts per kind."""
        entity: dict[tuple[str, str], list[EntityRef]] = {}
        location: dict[tuple[str, str], list[StoreRef]] = {}
        sku: dict[tuple[int, str], list[tuple[str, int]]] = {}
        for row in rows:
            if row.kind == "location":
                assert row.store is not None
                location.setdefault((row.source, row.pos_id), [])
                if row.store not in location[(row.source, row.pos_id)]:
                    location[(row.source, row.pos_id)].append(row.store)
            elif row.source == SKU_SOURCE:
                assert row.entity is not None
                refs = sku.setdefault((row.entity.business_id, row.pos_id), [])
                if (row.entity.level, row.entity.entity_id) not in refs:
                    refs.append((row.entity.level, row.entity.entity_id))
            else:
                assert row.entity is not None
                entity.setdefault((row.source, row.pos_id), [])
                if row.entity not in entity[(row.source, row.pos_id)]:
                    entity[(row.source, row.pos_id)].append(row.entity)
        pipe = self.client.pipeline(transaction=True)
        for (source, pos_id), erefs in entity.items():
            pipe.hset(self.entity_key(source), pos_id, _dumps((e.business_id, e.level, e.entity_id) for e in erefs))
        for (source, pos_id), srefs in location.items():
            pipe.hset(
                self.location_key(source), pos_id, _dumps((s.business_id, s.brand_id, s.branch_id) for s in srefs)
            )
        for (business, pos_id), pairs in sku.items():
            pipe.hset(self.sku_manual_key(business), pos_id, _dumps(pairs))
            pipe.sadd(self.sku_businesses_key, business)
        pipe.execute()
        return {"entity": len(entity), "location": len(location), "sku": len(sku)}

    def replace_sku_index(self, business_id: int, index: Mapping[str, Sequence[tuple[str, int]]]) -> int:
        """Atomically replace the synced SKU index of a business. Answers the number of SKUs."""
        key = self.sku_key(business_id)
        tmp = self.keys.group("map", "sku-tmp", business_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(tmp)
        if index:
            pipe.hset(tmp, mapping={sku: _dumps(pairs) for sku, pairs in index.items()})
            pipe.rename(tmp, key)
            pipe.sadd(self.sku_businesses_key, business_id)
        else:
            pipe.delete(key)
        pipe.execute()
        return len(index)


# CSV --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MappingRow:
    line: int
    kind: str
    source: str
    pos_id: str
    entity: EntityRef | None = None
    store: StoreRef | None = None


def _positive_int(value: str, column: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{column} {value!r} is not an integer") from None
    if number <= 0:
        raise ValueError(f"{column} must be positive, got {number}")
    return number


def parse_csv(text: str) -> list[MappingRow]:
    """Parse and check a mapping file; raises :class:`MappingImportError` listing every bad line."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1)]
    content = [(n, line) for n, line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not content:
        raise MappingImportError(["the file has no header line"])
    header_line, header = content[0]
    columns = [c.strip().lower() for c in next(csv.reader([header]))]
    missing = [c for c in CSV_COLUMNS if c not in columns]
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(unknown)}")
        raise MappingImportError([f"line {header_line}: header {'; '.join(parts)} (expected {','.join(CSV_COLUMNS)})"])
    rows: list[MappingRow] = []
    errors: list[str] = []
    for n, line in content[1:]:
        values = next(csv.reader(io.StringIO(line)))
        if len(values) != len(columns):
            errors.append(f"line {n}: expected {len(columns)} fields, got {len(values)}")
            continue
        cell = {c: v.strip() for c, v in zip(columns, values, strict=True)}
        try:
            rows.append(_parse_row(n, cell))
        except ValueError as exc:
            errors.append(f"line {n}: {exc}")
    if errors:
        raise MappingImportError(errors)
    return rows


def _parse_row(n: int, cell: dict[str, str]) -> MappingRow:
    kind, source, pos_id = cell["kind"].lower(), cell["source"].lower(), cell["pos_id"]
    if kind not in ("entity", "location"):
        raise ValueError(f"kind {cell['kind']!r} is not 'entity' or 'location'")
    if not _SOURCE.match(source):
        raise ValueError(f"source {cell['source']!r} is not a lower-case name")
    if not pos_id:
        raise ValueError("pos_id is empty")
    if len(pos_id) > 200:
        raise ValueError("pos_id is longer than 200 characters")
    business = _positive_int(cell["business_id"], "business_id")
    if kind == "entity":
        if cell["brand_id"] or cell["branch_id"]:
            raise ValueError("an entity row takes no brand_id / branch_id")
        level = cell["level"].lower()
        if level not in LEVELS:
            raise ValueError(f"level {cell['level']!r} is not one of {', '.join(LEVELS)}")
        entity = EntityRef(business, level, _positive_int(cell["entity_id"], "entity_id"))
        return MappingRow(n, kind, source, pos_id, entity=entity)
    if cell["level"] or cell["entity_id"]:
        raise ValueError("a location row takes no level / entity_id")
    if source == SKU_SOURCE:
        raise ValueError("source 'sku' has entity rows only (use 'inventory' for stream locations)")
    store = StoreRef(
        business, _positive_int(cell["brand_id"], "brand_id"), _positive_int(cell["branch_id"], "branch_id")
    )
    return MappingRow(n, kind, source, pos_id, store=store)


# klikit menu -> SKU index -----------------------------------------------------------------------

_LEVEL_OF_LIST = {
    "sections": "section",
    "categories": "category",
    "items": "item",
    "modifier_groups": "modifier_group",
    "modifiergroups": "modifier_group",
    "modifiers": "modifier",
}


def sku_index_from_menu(menu: Any) -> dict[str, list[tuple[str, int]]]:
    """Walk a klikit menu (any nesting) and index every dict that has both ``id`` and a non-empty ``sku``.

    The level comes from the name of the list the dict sits in (``sections``, ``categories``,
    ``items``, ``modifier_groups``/``modifierGroups``, ``modifiers``); unknown containers count
    as ``item``. A SKU found on several entities maps to all of them.
    """
    index: dict[str, list[tuple[str, int]]] = {}

    def visit(node: Any, level: str) -> None:
        if isinstance(node, dict):
            sku, ident = node.get("sku"), node.get("id")
            if isinstance(sku, str | int) and not isinstance(sku, bool) and str(sku).strip():
                try:
                    entity = int(ident)  # type: ignore[arg-type]
                except (TypeError, ValueError):
                    entity = 0
                if entity > 0:
                    refs = index.setdefault(str(sku).strip(), [])
                    if (level, entity) not in refs:
                        refs.append((level, entity))
            for key, value in node.items():
                child_level = _LEVEL_OF_LIST.get(str(key).lower(), level)
                if isinstance(value, dict | list):
                    visit(value, child_level)
        elif isinstance(node, list):
            for value in node:
                visit(value, level)

    visit(menu, "item")
    return index
