"""Id mappings: the CSV format, the Redis store, the SKU index built from a klikit menu."""

from __future__ import annotations

import pytest
import redis
from producer_helpers import BUSINESS, MAPPING_CSV

from config.redis import Keys
from producers.mapping import (
    EntityRef,
    MappingImportError,
    Mappings,
    StoreRef,
    pair_up,
    parse_csv,
    sku_index_from_menu,
)


def test_import_and_lookup(r: redis.Redis, keys: Keys) -> None:
    m = Mappings(r, keys)
    counts = m.import_rows(parse_csv(MAPPING_CSV))
    assert counts == {"entity": 2, "location": 3, "sku": 1}
    assert m.entities("square", "FGQ5JJWT2PYTHF35CKZ4DFUR") == [EntityRef(BUSINESS, "item", 101)]
    assert m.stores("shopify", "655441491") == [StoreRef(BUSINESS, 5297, 1293)]
    assert m.entities("square", "nope") == []
    assert m.sku_entities(["BURGER-CLASSIC", "X"], [BUSINESS]) == {
        ("BURGER-CLASSIC", BUSINESS): [EntityRef(BUSINESS, "item", 103)]
    }
    assert m.sku_businesses() == [BUSINESS]
    listed = list(m.iter_mappings())
    assert ("entity", "square", "FGQ5JJWT2PYTHF35CKZ4DFUR", f'[[{BUSINESS},"item",101]]') in listed
    assert any(row[0] == "sku-manual" and row[2] == "BURGER-CLASSIC" for row in listed)


def test_rows_accumulate_and_reimport_replaces(r: redis.Redis, keys: Keys) -> None:
    m = Mappings(r, keys)
    text = (
        "kind,source,pos_id,business_id,level,entity_id,brand_id,branch_id\n"
        "entity,square,V1,398,item,101,,\n"
        "entity,square,V1,398,modifier,501,,\n"
        "entity,square,V1,398,item,101,,\n"
        "location,square,L1,398,,,5297,1293\n"
        "location,square,L1,398,,,5297,1294\n"
    )
    m.import_rows(parse_csv(text))
    assert m.entities("square", "V1") == [EntityRef(398, "item", 101), EntityRef(398, "modifier", 501)]
    assert len(m.stores("square", "L1")) == 2
    m.import_rows(
        parse_csv("kind,source,pos_id,business_id,level,entity_id,brand_id,branch_id\nentity,square,V1,398,item,7,,\n")
    )
    assert m.entities("square", "V1") == [EntityRef(398, "item", 7)]
    assert len(m.stores("square", "L1")) == 2  # untouched


def test_columns_in_any_order_comments_and_blank_lines() -> None:
    text = (
        "# mappings for 398\n\nbusiness_id,kind,source,pos_id,level,entity_id,brand_id,branch_id\n"
        "398,entity,Shopify,1,Item,2,,\n"
    )
    (row,) = parse_csv(text)
    assert row.source == "shopify" and row.entity == EntityRef(398, "item", 2) and row.line == 4


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("thing,square,V1,398,item,101,,", "line 2: kind 'thing' is not 'entity' or 'location'"),
        ("entity,Square POS,V1,398,item,101,,", "line 2: source 'Square POS' is not a lower-case name"),
        ("entity,square,,398,item,101,,", "line 2: pos_id is empty"),
        ("entity,square,V1,abc,item,101,,", "line 2: business_id 'abc' is not an integer"),
        ("entity,square,V1,398,dish,101,,", "line 2: level 'dish' is not one of"),
        ("entity,square,V1,398,item,0,,", "line 2: entity_id must be positive"),
        ("entity,square,V1,398,item,101,5297,", "line 2: an entity row takes no brand_id"),
        ("location,square,L1,398,item,,5297,1293", "line 2: a location row takes no level"),
        ("location,square,L1,398,,,5297,", "line 2: branch_id '' is not an integer"),
        ("location,sku,L1,398,,,5297,1293", "line 2: source 'sku' has entity rows only"),
        ("entity,square,V1,398,item", "line 2: expected 8 fields, got 5"),
    ],
)
def test_bad_rows_are_reported_with_line_numbers(body: str, message: str) -> None:
    header = "kind,source,pos_id,business_id,level,entity_id,brand_id,branch_id\n"
    with pytest.raises(MappingImportError) as info:
        parse_csv(header + body + "\n")
    assert info.value.errors[0].startswith(message)


def test_every_bad_line_is_reported_and_nothing_is_written(r: redis.Redis, keys: Keys) -> None:
    text = (
        "kind,source,pos_id,business_id,level,entity_id,brand_id,branch_id\n"
        "entity,square,V1,398,item,101,,\n"
        "entity,square,V2,398,item,x,,\n"
        "location,square,L1,398,,,0,1\n"
    )
    with pytest.raises(MappingImportError) as info:
        parse_csv(text)
    assert [e.split(":")[0] for e in info.value.errors] == ["line 3", "line 4"]
    assert Mappings(r, keys).entities("square", "V1") == []


def test_empty_file_and_unknown_columns() -> None:
    with pytest.raises(MappingImportError, match="no header"):
        parse_csv("\n# nothing\n")
    with pytest.raises(MappingImportError, match="line 1: header missing column"):
        parse_csv("kind,source\n")
    with pytest.raises(MappingImportError, match="unknown column"):
        parse_csv("kind,source,pos_id,business_id,level,entity_id,brand_id,branch_id,price\n")


def test_pair_up_keeps_same_business_only() -> None:
    entities = [EntityRef(1, "item", 10), EntityRef(2, "item", 20)]
    stores = [StoreRef(2, 5, 6), StoreRef(3, 7, 8)]
    assert pair_up(entities, stores) == [(EntityRef(2, "item", 20), StoreRef(2, 5, 6))]


MENU = {
    "menu": {
        "id": 1,
        "sections": [
            {
                "id": 3,
                "title": "Breakfast",
                "sku": "SEC-BF",
                "categories": [
                    {
                        "id": 7,
                        "sku": None,
                        "items": [
                            {"id": 101, "sku": "BURGER-CLASSIC", "title": "Classic"},
                            {"id": 102, "sku": "", "title": "No sku"},
                            {"id": "104", "sku": 5555},
                            {
                                "id": 105,
                                "sku": "COMBO",
                                "modifierGroups": [
                                    {"id": 40, "sku": "MG-SAUCES", "modifiers": [{"id": 501, "sku": "SAUCE-BBQ"}]}
                                ],
                            },
                        ],
                    },
                    {"id": 8, "items": [{"id": 101, "sku": "BURGER-CLASSIC"}, {"id": 106, "sku": "BURGER-CLASSIC"}]},
                ],
            }
        ],
    }
}


def test_sku_index_walks_any_nesting() -> None:
    index = sku_index_from_menu(MENU)
    assert index == {
        "SEC-BF": [("section", 3)],
        "BURGER-CLASSIC": [("item", 101), ("item", 106)],
        "5555": [("item", 104)],
        "COMBO": [("item", 105)],
        "MG-SAUCES": [("modifier_group", 40)],
        "SAUCE-BBQ": [("modifier", 501)],
    }
    assert sku_index_from_menu({"data": [{"items": [{"id": 0, "sku": "ZERO"}, {"sku": "NOID"}]}]}) == {}
    assert sku_index_from_menu(None) == {}


def test_replace_sku_index_is_atomic_and_clears(r: redis.Redis, keys: Keys) -> None:
    m = Mappings(r, keys)
    assert m.replace_sku_index(398, sku_index_from_menu(MENU)) == 6
    found = m.sku_entities(["BURGER-CLASSIC", "SAUCE-BBQ"], [398])
    assert found[("BURGER-CLASSIC", 398)] == [EntityRef(398, "item", 101), EntityRef(398, "item", 106)]
    assert found[("SAUCE-BBQ", 398)] == [EntityRef(398, "modifier", 501)]
    m.replace_sku_index(398, {"NEW": [("item", 9)]})
    assert m.sku_entities(["BURGER-CLASSIC", "NEW"], [398]) == {("NEW", 398): [EntityRef(398, "item", 9)]}
    m.replace_sku_index(398, {})
    assert m.sku_entities(["NEW"], [398]) == {}
    assert not r.exists(keys.group("map", "sku-tmp", 398))


def test_imported_sku_rows_take_precedence_over_synced(r: redis.Redis, keys: Keys) -> None:
    m = Mappings(r, keys)
    m.replace_sku_index(BUSINESS, {"BURGER-CLASSIC": [("item", 999)]})
    m.import_rows(parse_csv(MAPPING_CSV))
    assert m.sku_entities(["BURGER-CLASSIC"], [BUSINESS])[("BURGER-CLASSIC", BUSINESS)] == [
        EntityRef(BUSINESS, "item", 103)
    ]
