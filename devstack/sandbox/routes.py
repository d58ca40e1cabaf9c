"""The partner-API route table: every path the sandbox serves under ``/v1/partner``.

Several paths are inferred by analogy (marked ``inferred``); they live only here. Each route names
its operation, the scope it needs, and whether it is a write (POST/PATCH: needs an Idempotency-Key).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from devstack.sandbox.ops.context import OpContext
from devstack.sandbox.ops.create import create_category, create_item, create_section, link_modifiers
from devstack.sandbox.ops.directory import list_branches, list_brands, list_providers
from devstack.sandbox.ops.enable import enable
from devstack.sandbox.ops.publish import publish, reset_overrides
from devstack.sandbox.ops.read import get_menu
from devstack.sandbox.ops.sync import populate, sync
from devstack.sandbox.ops.visibility import set_visibilities

PREFIX = "/v1/partner"
Handler = Callable[[OpContext], Any]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    operation: str
    scope: str
    handler: Handler
    inferred: bool = False
    success_status: int = 200

    @property
    def is_write(self) -> bool:
        return self.method in ("POST", "PATCH", "PUT", "DELETE")

    @property
    def pattern(self) -> re.Pattern[str]:
        return _compile(self.template)


def _compile(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[0-9]{1,18})", PREFIX + template) + "$")


def _r(
    method: str,
    template: str,
    operation: str,
    scope: str,
    handler: Handler,
    inferred: bool = False,
    success_status: int = 200,
) -> Route:
    return Route(method, template, operation, scope, handler, inferred, success_status)


ROUTES: list[Route] = [
    _r(
        "PATCH", "/menus/sections/enable", "enableSections", "menus:write", partial(enable, path_level="sections"), True
    ),
    _r(
        "PATCH", "/menus/categories/enable", "enableCategories", "menus:write", partial(enable, path_level="categories")
    ),
    _r("PATCH", "/menus/items/enable", "enableItems", "menus:write", partial(enable, path_level="items"), True),
    _r(
        "PATCH",
        "/menus/sections/{id}/visibilities",
        "setSectionVisibilities",
        "visibility:write",
        partial(set_visibilities, path_level="sections"),
    ),
    _r(
        "PATCH",
        "/menus/categories/{id}/visibilities",
        "setCategoryVisibilities",
        "visibility:write",
        partial(set_visibilities, path_level="categories"),
        True,
    ),
    _r(
        "PATCH",
        "/menus/items/{id}/visibilities",
        "setItemVisibilities",
        "visibility:write",
        partial(set_visibilities, path_level="items"),
        True,
    ),
    _r(
        "PATCH",
        "/menus/modifier-groups/{id}/visibilities",
        "setModifierGroupVisibilities",
        "visibility:write",
        partial(set_visibilities, path_level="modifier-groups"),
        True,
    ),
    _r(
        "PATCH",
        "/menus/modifiers/{id}/visibilities",
        "setModifierVisibilities",
        "visibility:write",
        partial(set_visibilities, path_level="modifiers"),
        True,
    ),
    _r("POST", "/menus/sync", "syncMenuToStores", "menus:write", sync),
    _r("POST", "/menus/populate", "populateStores", "menus:write", populate, True),
    _r("POST", "/menus/reset", "resetStoreOverrides", "menus:write", reset_overrides, True),
    _r("POST", "/menus/publish", "publishMenu", "menus:write", publish),
    _r("GET", "/menus", "getMenu", "menus:read", get_menu),
    _r("POST", "/menus/sections", "createSection", "menus:write", create_section, success_status=201),
    _r("POST", "/menus/categories", "createCategory", "menus:write", create_category, success_status=201),
    _r("POST", "/menus/items", "createItem", "menus:write", create_item, success_status=201),
    _r("POST", "/menus/modifier-groups/modifiers", "linkModifiersToGroup", "menus:write", link_modifiers),
    _r("GET", "/providers", "listProviders", "menus:read", list_providers),
    _r("GET", "/brands", "listBrands", "brands:read", list_brands),
    _r("GET", "/branches", "listBranches", "brands:read", list_branches),
]

_COMPILED: list[tuple[re.Pattern[str], Route]] = [(_compile(r.template), r) for r in ROUTES]


def match(method: str, path: str) -> tuple[Route, dict[str, int]] | None:
    """The route for ``method`` and ``path`` with its integer path parameters, or None."""
    for pattern, route in _COMPILED:
        if route.method != method:
            continue
        found = pattern.match(path)
        if found:
            return route, {k: int(val) for k, val in found.groupdict().items()}
    return None
