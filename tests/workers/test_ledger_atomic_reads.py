"""Reads whose parts must agree are atomic: a record landing mid-read never splits them.

The interleaving is forced, not hoped for: ``InterleavingRedis`` (tests/workers/interleaving.py)
runs every command of a non-transactional pipeline on its own and calls a hook after each one, so
a hook can land a ``record`` between two reads exactly where a concurrent producer could. A script
or a MULTI/EXEC block runs as one command, so nothing can land inside it.
"""

from __future__ import annotations

from typing import Any

from interleaving import interleaving_client

from config.redis import Keys
from workers.changes import Change, Store, Target
from workers.ledger import Ledger

STORE = Store(brand_id=5297, branch_id=1293)
TARGET = Target(business_id=398, store=STORE, level="item", entity_id=101, field="enabled")


def _change(at_ms: int, value: bool) -> Change:
    return Change(id=f"c{at_ms}", target=TARGET, value=value, occurred_at_ms=at_ms)


def test_a_record_landing_mid_pending_read_never_pairs_an_old_value_with_a_new_version(
    r: Any, keys: Keys, redis_url: str
) -> None:
    writer = Ledger(r, keys)
    writer.record([_change(1_000, False)])
    newer = _change(2_000, True)
    desired_key = keys.business(398, "desired")
    landed: list[str | None] = []

    def land_newer_record(name: str, args: tuple[Any, ...]) -> None:
        # Right after the first command that reads desired values, a producer records a newer change.
        if not landed and desired_key in args:
            landed.extend(writer.record([newer]))

    client = interleaving_client(redis_url)
    client.after_command = land_newer_record  # type: ignore[method-assign]
    rows = Ledger(client, keys).pending(398)

    assert landed and landed[0], "the newer record did not land during the read"
    assert len(rows) == 1
    row = rows[0]
    # Whatever moment the read saw, its value and version belong together.
    assert row.value is {1_000: False, 2_000: True}[int(row.version.split(".")[0])], (row.value, row.version)


def _read_racing_one_record(redis_url: str, keys: Keys, writer: Ledger, at_ms: int, read: Any) -> Any:
    """``read(ledger)`` while a newer change (``at_ms``, enabled) lands right after its first command."""
    landed: list[str | None] = []

    def land_newer_record(name: str, args: tuple[Any, ...]) -> None:
        if not landed:
            landed.extend(writer.record([_change(at_ms, True)]))

    client = interleaving_client(redis_url)
    client.after_command = land_newer_record  # type: ignore[method-assign]
    result = read(Ledger(client, keys))
    assert landed and landed[0], "the newer record did not land during the read"
    return result


def _consistent(value: Any, version: str) -> bool:
    return value is (int(version.split(".")[0]) != 1_000)


def test_desired_reads_value_and_version_of_one_moment(r: Any, keys: Keys, redis_url: str) -> None:
    writer = Ledger(r, keys)
    writer.record([_change(1_000, False)])
    value, version = _read_racing_one_record(redis_url, keys, writer, 2_000, lambda ledger: ledger.desired(TARGET))
    assert _consistent(value, version), (value, version)


def test_all_desired_reads_values_and_versions_of_one_moment(r: Any, keys: Keys, redis_url: str) -> None:
    writer = Ledger(r, keys)
    writer.record([_change(1_000, False)])
    everything = _read_racing_one_record(redis_url, keys, writer, 2_000, lambda ledger: ledger.all_desired(398))
    assert everything, "nothing read"
    for value, version in everything.values():
        assert _consistent(value, version), (value, version)


def test_releasing_a_lease_never_deletes_the_lease_another_worker_took_meanwhile(
    r: Any, keys: Keys, redis_url: str
) -> None:
    from workers.lease import BusinessLease

    client = interleaving_client(redis_url)
    lease = BusinessLease(client, keys, 398, ttl_ms=5_000)
    assert lease.acquire()
    taken: list[bool] = []

    def expire_and_take(name: str, args: tuple[Any, ...]) -> None:
        # Right after the holder's first look at its lease, it expires and another worker takes it.
        if not taken and lease.key in args and name != "SET":
            r.set(lease.key, "other-worker", px=5_000)
            taken.append(True)

    client.after_command = expire_and_take  # type: ignore[method-assign]
    lease.release()
    assert r.get(lease.key) == "other-worker"
