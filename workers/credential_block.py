"""The credential block: set when klikit refused a business's credential (401/403), cleared by
``menusync credentials clear`` or a changed credentials file. Flush sets it and stops writing;
publish, read-back, the sweeper, status and the dead-letter commands read or clear it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workers.runtime import Runtime


def auth_block_key(rt: Runtime, business_id: int) -> str:
    return rt.keys.business(business_id, "credential", "blocked")
