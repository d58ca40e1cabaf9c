"""Start-up configuration of the sandbox: what to seed and which faults to inject.

Both halves can be given as keyword options (``running_sandbox(businesses=2, downstream_rate=0.1)``),
as command-line flags (``--businesses 2 --downstream-rate 0.1``) or, for faults, at run time over the
admin API. ``split_options`` sorts a flat keyword dict into the two halves and rejects unknown names.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

DROP_PHASES = ("before", "after")


@dataclass(frozen=True)
class SeedConfig:
    """What the world looks like after start or ``POST /_sandbox/reset``.

    The demo business 398 is always seeded. ``businesses`` adds that many benchmark businesses
    (ids 1001, 1002, ...) with ``stores_per_business`` stores and ``items_per_business`` items each.
    ``max_calls`` bounds the call record (oldest entries are forgotten first).
    """

    businesses: int = 0
    stores_per_business: int = 3
    items_per_business: int = 300
    max_calls: int = 200_000

    def __post_init__(self) -> None:
        if self.businesses < 0 or self.businesses > 5000:
            raise ValueError("businesses must be within 0..5000")
        if not 1 <= self.stores_per_business <= 1000:
            raise ValueError("stores_per_business must be within 1..1000")
        if not 1 <= self.items_per_business <= 100_000:
            raise ValueError("items_per_business must be within 1..100000")
        if self.max_calls < 1:
            raise ValueError("max_calls must be positive")


@dataclass(frozen=True)
class FaultConfig:
    """Faults injected on ``/v1/partner`` routes.

    - ``downstream_rate``: share of calls answered 502 ``downstream_unavailable`` before any write.
    - ``latency_ms``: added to every call.
    - ``hang_rate`` / ``hang_s``: share of calls that sleep ``hang_s`` and are then processed normally
      (the write applies even though the client has long given up).
    - ``drop_rate`` / ``drop_phase``: share of calls whose connection is closed without a response,
      ``before`` or ``after`` the write is applied.
    - ``rate_per_minute`` / ``rate_burst``: per-credential token bucket (None = no limit; burst 0 means
      ``rate_per_minute``); ``rate_limit_headers`` adds ``X-RateLimit-*`` headers.
    - ``writes_only``: all of the above apply to POST/PATCH only.
    - ``seed``: seeds the random draws so a run can be repeated.
    """

    downstream_rate: float = 0.0
    latency_ms: int = 0
    hang_rate: float = 0.0
    hang_s: float = 0.0
    drop_rate: float = 0.0
    drop_phase: str = "before"
    rate_per_minute: int | None = None
    rate_burst: int = 0
    rate_limit_headers: bool = False
    writes_only: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("downstream_rate", "hang_rate", "drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0.0..1.0")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        if self.hang_s < 0:
            raise ValueError("hang_s must be >= 0")
        if self.drop_phase not in DROP_PHASES:
            raise ValueError("drop_phase must be 'before' or 'after'")
        if self.rate_per_minute is not None and self.rate_per_minute < 1:
            raise ValueError("rate_per_minute must be >= 1 or null")
        if self.rate_burst < 0:
            raise ValueError("rate_burst must be >= 0")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def merged(self, changes: dict[str, Any]) -> FaultConfig:
        """A copy with ``changes`` applied; unknown names or wrong types raise ``ValueError``."""
        return FaultConfig(**{**self.to_json(), **coerce_fault_fields(changes)})


_FAULT_TYPES: dict[str, tuple[type, ...]] = {
    "downstream_rate": (float,),
    "latency_ms": (int,),
    "hang_rate": (float,),
    "hang_s": (float,),
    "drop_rate": (float,),
    "drop_phase": (str,),
    "rate_per_minute": (int, type(None)),
    "rate_burst": (int,),
    "rate_limit_headers": (bool,),
    "writes_only": (bool,),
    "seed": (int, type(None)),
}


def coerce_fault_fields(changes: dict[str, Any]) -> dict[str, Any]:
    """Check names and types of fault fields (ints are accepted where floats are expected)."""
    out: dict[str, Any] = {}
    for name, value in changes.items():
        types = _FAULT_TYPES.get(name)
        if types is None:
            raise ValueError(f"unknown fault field {name!r}")
        if isinstance(value, bool) and bool not in types:
            raise ValueError(f"{name} has the wrong type")
        if float in types and isinstance(value, int):
            value = float(value)
        if not isinstance(value, types):
            raise ValueError(f"{name} has the wrong type")
        out[name] = value
    return out


@dataclass(frozen=True)
class SandboxConfig:
    """Seed and start-up faults together."""

    seed: SeedConfig = field(default_factory=SeedConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)


SEED_FIELDS = frozenset(f.name for f in dataclasses.fields(SeedConfig))
FAULT_FIELDS = frozenset(f.name for f in dataclasses.fields(FaultConfig))


def split_options(options: dict[str, Any]) -> SandboxConfig:
    """Build a ``SandboxConfig`` from flat keyword options; ``fault_seed`` is accepted for ``seed``."""
    seed_kw: dict[str, Any] = {}
    fault_kw: dict[str, Any] = {}
    for name, value in options.items():
        if name in SEED_FIELDS:
            seed_kw[name] = value
        elif name == "fault_seed":
            fault_kw["seed"] = value
        elif name in FAULT_FIELDS:
            fault_kw[name] = value
        else:
            raise TypeError(f"unknown sandbox option {name!r}")
    return SandboxConfig(seed=SeedConfig(**seed_kw), faults=FaultConfig().merged(fault_kw))
