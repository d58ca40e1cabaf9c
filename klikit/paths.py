"""Every klikit partner-API operation the client uses, in one table.

Paths are relative to the host and carry ``/v1/partner``. Several are **inferred** by
analogy with a documented endpoint (reference §6 and §12); they are marked below so that
one edit here fixes the client if klikit's live paths turn out different.
"""

from __future__ import annotations

from dataclasses import dataclass

API_PREFIX = "/v1/partner"


@dataclass(frozen=True)
class Operation:
    """One endpoint: ``path`` may contain ``{id}``; ``write`` operations need an Idempotency-Key."""

    name: str
    method: str
    path: str
    write: bool
    inferred: bool = False

    @property
    def needs_id(self) -> bool:
        return "{id}" in self.path

    def url_path(self, path_id: int | None = None) -> str:
        """The path with ``{id}`` filled in (``path_id`` must be given exactly when the path needs one)."""
        if self.needs_id:
            if path_id is None:
                raise ValueError(f"operation {self.name} needs a path id")
            return self.path.replace("{id}", str(int(path_id)))
        if path_id is not None:
            raise ValueError(f"operation {self.name} takes no path id")
        return self.path


def _op(name: str, method: str, path: str, *, inferred: bool = False) -> Operation:
    return Operation(name, method, API_PREFIX + path, method in ("POST", "PATCH", "PUT", "DELETE"), inferred)


_ALL = [
    # bulk enable / disable (REF: categories; sections and items "same shape")
    _op("enable_sections", "PATCH", "/menus/sections/enable", inferred=True),
    _op("enable_categories", "PATCH", "/menus/categories/enable"),
    _op("enable_items", "PATCH", "/menus/items/enable", inferred=True),
    # visibility maps (REF: sections; the rest by analogy)
    _op("set_section_visibilities", "PATCH", "/menus/sections/{id}/visibilities"),
    _op("set_category_visibilities", "PATCH", "/menus/categories/{id}/visibilities", inferred=True),
    _op("set_item_visibilities", "PATCH", "/menus/items/{id}/visibilities", inferred=True),
    _op("set_modifier_group_visibilities", "PATCH", "/menus/modifier-groups/{id}/visibilities", inferred=True),
    _op("set_modifier_visibilities", "PATCH", "/menus/modifiers/{id}/visibilities", inferred=True),
    # store propagation and publish
    _op("sync_menu_to_stores", "POST", "/menus/sync"),
    _op("populate_stores", "POST", "/menus/populate", inferred=True),
    _op("reset_store_overrides", "POST", "/menus/reset", inferred=True),
    _op("publish_menu", "POST", "/menus/publish"),
    # menu tree and creation
    _op("get_menu", "GET", "/menus"),
    _op("create_section", "POST", "/menus/sections"),
    _op("create_category", "POST", "/menus/categories"),
    _op("create_item", "POST", "/menus/items"),
    _op("link_modifiers_to_group", "POST", "/menus/modifier-groups/modifiers"),
    # directory
    _op("list_providers", "GET", "/providers"),
    _op("list_brands", "GET", "/brands"),
    _op("list_branches", "GET", "/branches"),
]

OPERATIONS: dict[str, Operation] = {op.name: op for op in _ALL}

#: change level -> bulk enable operation. Modifiers are items with ``onlyModifier: true``: they
#: are enabled through enableItems; modifier groups have no enable endpoint.
ENABLE_OPERATION: dict[str, str] = {
    "section": "enable_sections",
    "category": "enable_categories",
    "item": "enable_items",
    "modifier": "enable_items",
}

#: change level -> visibility-map operation
VISIBILITY_OPERATION: dict[str, str] = {
    "section": "set_section_visibilities",
    "category": "set_category_visibilities",
    "item": "set_item_visibilities",
    "modifier_group": "set_modifier_group_visibilities",
    "modifier": "set_modifier_visibilities",
}
