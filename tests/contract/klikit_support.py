"""Constants and helpers shared by the klikit client tests (importable; conftest only holds fixtures)."""

from __future__ import annotations

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
    """Stands in for the client's sleep: records every in-call wait, waits nothing."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
