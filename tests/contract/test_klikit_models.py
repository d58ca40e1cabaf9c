"""Request models: camelCase on the wire, None left out, local validation before anything is sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from klikit import ENABLE_OPERATION, OPERATIONS, VISIBILITY_OPERATION
from klikit.models import (
    CreateCategoryRequest,
    CreateItemRequest,
    CreateSectionRequest,
    EnableUpdateRequest,
    LinkModifiersRequest,
    ModifierAttachment,
    PublishRequest,
    SyncRequest,
    SyncSection,
    UpdateVisibilityRequest,
    ZoneStore,
)

STORE = ZoneStore(brand_id=5297, branch_id=1293)


def test_enable_request_wire_shape_and_is_enabled_always_sent() -> None:
    assert EnableUpdateRequest(ids=[101, 102], is_enabled=False).wire() == {"ids": [101, 102], "isEnabled": False}
    full = EnableUpdateRequest(
        ids=[1], is_enabled=True, zone_stores=[STORE], brand_ids_to_cascade=[5297], is_cascade_to_modifier_groups=True
    )
    assert full.wire() == {
        "ids": [1],
        "isEnabled": True,
        "zoneStores": [{"brandID": 5297, "branchID": 1293}],
        "brandIDsToCascade": [5297],
        "isCascadeToModifierGroups": True,
    }
    # wire names are accepted too
    assert EnableUpdateRequest.model_validate(full.wire()) == full


def test_enable_request_needs_ids_and_is_enabled() -> None:
    with pytest.raises(ValidationError):
        EnableUpdateRequest(ids=[], is_enabled=True)
    with pytest.raises(ValidationError):
        EnableUpdateRequest.model_validate({"ids": [1]})
    with pytest.raises(ValidationError):
        EnableUpdateRequest.model_validate({"ids": [1], "isEnabled": True, "bogus": 1})


def test_visibility_request_keys_are_provider_id_strings() -> None:
    req = UpdateVisibilityRequest(visibilities={1: True, "6": False})
    assert req.wire() == {"visibilities": {"1": True, "6": False}}
    assert UpdateVisibilityRequest(visibilities={"1": True}, zone_stores=[STORE]).wire()["zoneStores"] == [
        {"brandID": 5297, "branchID": 1293}
    ]
    with pytest.raises(ValidationError):
        UpdateVisibilityRequest(visibilities={"grab": True})


def test_sync_request_wire_shape() -> None:
    req = SyncRequest(
        stores=[STORE],
        sections={6825: SyncSection(sequence=1, available_times={0: {"slots": [{"startTime": 900, "endTime": 2200}]}})},
        field_include_on_sync=["availableTimes"],
    )
    assert req.wire() == {
        "stores": [{"brandID": 5297, "branchID": 1293}],
        "sections": {
            "6825": {
                "sequence": 1,
                "availableTimes": {"0": {"disabled": False, "slots": [{"startTime": 900, "endTime": 2200}]}},
            }
        },
        "fieldIncludeOnSync": ["availableTimes"],
    }
    # {} is meaningful (fall back to the business schedule) and is always sent
    assert SyncRequest(stores=[STORE], sections={"6825": SyncSection()}).wire()["sections"]["6825"] == {
        "sequence": 0,
        "availableTimes": {},
    }


@pytest.mark.parametrize(
    "times",
    [
        {"7": {"slots": []}},
        {"0": {"slots": [{"startTime": 960, "endTime": 1000}]}},
        {"0": {"slots": [{"startTime": 2400, "endTime": 0}]}},
    ],
)
def test_sync_request_rejects_bad_schedules(times: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SyncSection.model_validate({"sequence": 1, "availableTimes": times})


def test_sync_request_needs_stores_and_sections() -> None:
    with pytest.raises(ValidationError):
        SyncRequest(stores=[], sections={"1": SyncSection()})
    with pytest.raises(ValidationError):
        SyncRequest(stores=[STORE], sections={})


def test_publish_request_wire_shape_and_utc() -> None:
    plus7 = timezone(timedelta(hours=7))
    req = PublishRequest(stores=[STORE], provider_ids=[1, 6], scheduled_at=datetime(2026, 11, 22, 17, 0, tzinfo=plus7))
    assert req.wire() == {
        "stores": [{"brandID": 5297, "branchID": 1293}],
        "providerIDs": [1, 6],
        "scheduledAt": "2026-11-22T10:00:00Z",
    }
    assert "scheduledAt" not in PublishRequest(stores=[STORE], provider_ids=[1]).wire()
    with pytest.raises(ValidationError):
        PublishRequest(stores=[STORE], provider_ids=[1], scheduled_at=datetime(2026, 1, 1))
    with pytest.raises(ValidationError):
        PublishRequest(stores=[STORE], provider_ids=[])
    assert datetime(2026, 1, 1, tzinfo=UTC)


def _item(**kw: object) -> dict[str, object]:
    body: dict[str, object] = {
        "title": {"en": "Margherita"},
        "vat": 11,
        "visibilities": {"1": True},
        "prices": {"1": {"IDR": {"price": 50000, "takeAwayPrice": 50000}}},
    }
    body.update(kw)
    return body


def test_create_item_wire_shape() -> None:
    req = CreateItemRequest.model_validate(_item(sku="CBA001", onlyModifier=False, prepTime=10, fromAPI=True))
    assert req.wire() == {
        "title": {"en": "Margherita"},
        "vat": 11,
        "visibilities": {"1": True},
        "prices": {"1": {"IDR": {"price": 50000, "takeAwayPrice": 50000}}},
        "sku": "CBA001",
        "onlyModifier": False,
        "prepTime": 10,
        "fromAPI": True,
    }


@pytest.mark.parametrize(
    "override",
    [
        {"prices": {"6": {"IDR": {"price": 1, "takeAwayPrice": 1}}}},  # no klikit price
        {"prices": {"1": {}}},  # klikit provider without a currency
        {"prices": {"1": {"idr": {"price": 1, "takeAwayPrice": 1}}}},  # not ISO 4217
        {"sku": "X" * 51},
        {"vat": -1},
        {"title": {}},
    ],
)
def test_create_item_is_refused_locally(override: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CreateItemRequest.model_validate(_item(**override))


def test_create_item_sku_of_50_is_fine() -> None:
    assert CreateItemRequest.model_validate(_item(sku="X" * 50)).sku == "X" * 50


def test_other_create_bodies() -> None:
    assert CreateSectionRequest(title={"en": "Breakfast"}, sequence=1, is_enabled=True).wire() == {
        "title": {"en": "Breakfast"},
        "sequence": 1,
        "isEnabled": True,
    }
    assert CreateCategoryRequest(title={"en": "Pizza"}, visibilities={"1": True}, is_halal=True).wire() == {
        "title": {"en": "Pizza"},
        "visibilities": {"1": True},
        "isHalal": True,
    }
    link = LinkModifiersRequest(
        modifier_group_id=7, attach=[ModifierAttachment(id=1, sequence=2)], delete_modifier_ids=[3]
    )
    assert link.wire() == {"modifierGroupID": 7, "attach": [{"id": 1, "sequence": 2}], "deleteModifierIDs": [3]}


def test_operation_table() -> None:
    assert len(OPERATIONS) == 20
    for name, op in OPERATIONS.items():
        assert op.name == name
        assert op.path.startswith("/v1/partner/")
        assert op.write == (op.method in ("POST", "PATCH"))
    assert OPERATIONS["enable_categories"].path == "/v1/partner/menus/categories/enable"
    assert OPERATIONS["set_section_visibilities"].url_path(6825) == "/v1/partner/menus/sections/6825/visibilities"
    assert OPERATIONS["set_modifier_group_visibilities"].path == "/v1/partner/menus/modifier-groups/{id}/visibilities"
    assert OPERATIONS["publish_menu"].method == "POST"
    assert not OPERATIONS["get_menu"].write
    assert set(ENABLE_OPERATION) == {"section", "category", "item", "modifier"}
    assert set(VISIBILITY_OPERATION) == {"section", "category", "item", "modifier_group", "modifier"}
    assert all(v in OPERATIONS for v in [*ENABLE_OPERATION.values(), *VISIBILITY_OPERATION.values()])
    with pytest.raises(ValueError):
        OPERATIONS["set_item_visibilities"].url_path(None)
    with pytest.raises(ValueError):
        OPERATIONS["enable_items"].url_path(3)
