"""Constants and helpers shared by the klikit client tests (importable; conftest only holds fixtures)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from config.credentials import BusinessCredential, StoreRef
from klikit import RetryPolicy

BUSINESS = 398
PARTNER_KEY = "pk_398"
SECRET = "sk_398_sandbox"
REVOKED = ("pk_398_revoked", "sk_revoked")
READONLY = ("pk_398_readonly", "sk_readonly")
STORES = [(5297, 1293), (5297, 5913), (1615, 1294)]
SECTION = 6825

#: fast in-call retries: tests assert attempt counts, never timings
FAST = RetryPolicy(attempts=3, min_backoff_s=0.001, max_backoff_s=0.01, max_retry_after_s=2.0)


def credential(
    partner_key: str = PARTNER_KEY, secret: str = SECRET, business_id: int = BUSINESS, **kw: Any
) -> BusinessCredential:
    return BusinessCredential(
        business_id=business_id,
        partner_key=partner_key,
        secret_key=SecretStr(secret),
        provider_ids=(1, 6),
        stores=tuple(StoreRef(brand_id=b, branch_id=r) for b, r in STORES),
        **kw,
    )


class SleepRecorder:
    """Stands in for the client's sleep between in-call attempts: records every wait.

    It waits nothing unless ``real`` is set; ``on_sleep`` (if set) runs at each wait, so that a
    test can change the sandbox's faults between two attempts of one call.
    """

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.real = False
        self.on_sleep: Callable[[int], None] | None = None

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep(len(self.waits))
        if self.real:
            time.sleep(seconds)


def find_entity(tree: Any, entity_id: int) -> dict[str, Any] | None:
    """The first object with ``id == entity_id`` anywhere in a rendered menu tree."""
    if isinstance(tree, dict):
        if tree.get("id") == entity_id:
            return tree
        values: Any = tree.values()
    elif isinstance(tree, list):
        values = tree
    else:
        return None
    for value in values:
        found = find_entity(value, entity_id)
        if found is not None:
            return found
    return None


def store_key(store: tuple[int, int]) -> str:
    return f"{store[0]}:{store[1]}"
