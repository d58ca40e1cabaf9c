"""The dead-letter store: every write klikit will never take, with why, for replay.

A record carries what an operator needs to see why and to replay: the targets
(key and version), the operation, path, request body and idempotency key, and
klikit's error code, HTTP status and ``request_id``, with attempt count and the
first and last failure time. Secrets never enter a record: bodies are klikit
request bodies, and free text is scrubbed of registered secrets.

Layout: ``dlq:item:ID`` (JSON), ``dlq:index`` and ``dlq:business:B`` (zsets by
time), ``dlq:codes`` and ``dlq:codes:B`` (hash code -> count).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from config.logging import scrub
from config.redis import Keys
from klikit.errors import KlikitError
from klikit.paths import OPERATIONS
from workers.clock import now_ms
from workers.scripts import script

#: A record's reason is capped: it is shown in lists and carried in metrics' logs.
REASON_MAX_CHARS = 2_000


class DeadLetter(BaseModel):
    id: str = Field(default_factory=lambda: f"dl-{now_ms()}-{secrets.token_hex(4)}")
    kind: str = "call"
    """``call`` (a klikit write or publish) or ``message`` (a message that could not be processed)."""
    business_id: int | None = None
    targets: list[tuple[str, str]] = Field(default_factory=list)
    change_ids: list[str] = Field(default_factory=list)
    operation: str | None = None
    path: str | None = None
    body: Any = None
    idempotency_key: str | None = None
    error_code: str
    http_status: int | None = None
    request_id: str | None = None
    attempts: int = 1
    first_failure_ms: int = Field(default_factory=now_ms)
    last_failure_ms: int = Field(default_factory=now_ms)
    reason: str = ""
    actor: str | None = None
    message_id: str | None = None
    replayed_at_ms: int | None = None


def build_dead_letter(
    *,
    kind: str = "call",
    business_id: int | None = None,
    error: KlikitError | None = None,
    code: str | None = None,
    reason: str | None = None,
    targets: Sequence[tuple[str, str]] = (),
    change_ids: Sequence[str] = (),
    operation: str | None = None,
    path_id: int | None = None,
    body: Any = None,
    idempotency_key: str | None = None,
    attempts: int | None = None,
    first_failure_ms: int | None = None,
    last_failure_ms: int | None = None,
    actor: str | None = None,
    message_id: str | None = None,
) -> DeadLetter:
    """The one place a dead letter is made, for every kind (a call, targets set aside, a message, a timer).

    klikit's ``error`` gives the code, HTTP status, ``request_id``, attempt count and reason unless
    they are named; a klikit operation gives the path (from the operations table); the reason is
    scrubbed of registered secrets and capped; change ids are sorted and unique.
    """
    if error is None and code is None:
        raise ValueError("a dead letter needs an error or a code")
    now = now_ms()
    path = OPERATIONS[operation].url_path(path_id) if operation in OPERATIONS else None
    return DeadLetter(
        kind=kind,
        business_id=business_id,
        targets=list(targets),
        change_ids=sorted(set(change_ids)),
        operation=operation,
        path=path,
        body=body,
        idempotency_key=idempotency_key,
        error_code=code or (error.code if error else "unknown"),
        http_status=error.status if error else None,
        request_id=error.request_id if error else None,
        attempts=attempts or (getattr(error, "attempts", 1) or 1),
        first_failure_ms=first_failure_ms if first_failure_ms is not None else now,
        last_failure_ms=last_failure_ms if last_failure_ms is not None else now,
        reason=scrub(reason if reason is not None else (error.message if error else ""))[:REASON_MAX_CHARS],
        actor=actor,
        message_id=message_id,
    )


class DeadLetterStore:
    def __init__(self, client: Any, keys: Keys) -> None:
        self.r = client
        self.k = keys

    def __repr__(self) -> str:
        return f"DeadLetterStore({self.k!r})"

    def add(self, record: DeadLetter) -> DeadLetter:
        record = record.model_copy(update={"reason": scrub(record.reason)})
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self.k.group("dlq", "item", record.id), record.model_dump_json())
        pipe.zadd(self.k.group("dlq", "index"), {record.id: record.last_failure_ms})
        pipe.hincrby(self.k.group("dlq", "codes"), record.error_code, 1)
        if record.business_id is not None:
            pipe.zadd(self.k.group("dlq", "business", record.business_id), {record.id: record.last_failure_ms})
            pipe.hincrby(self.k.group("dlq", "codes", record.business_id), record.error_code, 1)
        pipe.execute()
        return record

    def get(self, dead_letter_id: str) -> DeadLetter | None:
        raw = self.r.get(self.k.group("dlq", "item", dead_letter_id))
        return DeadLetter.model_validate(json.loads(raw)) if raw else None

    def _index(self, business_id: int | None) -> str:
        """The time index of one business's dead letters, or of all of them."""
        return self.k.group("dlq", "business", business_id) if business_id is not None else self.k.group("dlq", "index")

    def list(self, business_id: int | None = None, limit: int = 100) -> list[DeadLetter]:
        index = self._index(business_id)
        ids = self.r.zrevrange(index, 0, limit - 1)
        if not ids:
            return []
        raws = self.r.mget([self.k.group("dlq", "item", i) for i in ids])
        return [DeadLetter.model_validate(json.loads(raw)) for raw in raws if raw]

    def count(self, business_id: int | None = None) -> int:
        index = self._index(business_id)
        return int(self.r.zcard(index))

    def codes_key(self, business_id: int | None = None) -> str:
        """The hash of open dead letters by code: of one business, or of all of them."""
        return self.k.group("dlq", "codes", business_id) if business_id is not None else self.k.group("dlq", "codes")

    @staticmethod
    def open_codes(raw: dict[str, str]) -> dict[str, int]:
        """The codes with open dead letters, from a read of :meth:`codes_key` (counts at 0 left out)."""
        return {code: int(n) for code, n in raw.items() if int(n) > 0}

    def counts_by_code(self, business_id: int | None = None) -> dict[str, int]:
        return self.open_codes(self.r.hgetall(self.codes_key(business_id)))

    def drop(self, dead_letter_id: str) -> bool:
        """Forget an open record; ``False`` if it was not open (already dropped or replayed)."""
        record = self.get(dead_letter_id)
        return record is not None and self._settle(record, "drop")

    def purge_before(self, cutoff_ms: int, limit: int = 1_000) -> int:
        """Remove open records last failed before ``cutoff_ms`` (the retention period); answers how many.

        Their targets stay set aside in the ledger until a newer change arrives, as after ``drop``."""
        ids = self.r.zrangebyscore(self.k.group("dlq", "index"), "-inf", cutoff_ms, start=0, num=limit)
        removed = 0
        for dead_letter_id in ids:
            record = self.get(dead_letter_id)
            if record is None:  # the item is gone: take the id out of the index alone
                self.r.zrem(self.k.group("dlq", "index"), dead_letter_id)
                continue
            removed += self._settle(record, "drop")
        return removed

    def mark_replayed(self, record: DeadLetter, replayed_at_ms: int, keep_s: int) -> bool:
        """Leave the open list and the counts, readable by id for ``keep_s``; ``False`` if not open."""
        return self._settle(record.model_copy(update={"replayed_at_ms": replayed_at_ms}), "replay", keep_s)

    def _settle(self, record: DeadLetter, mode: str, keep_s: int = 0) -> bool:
        b = record.business_id
        keys = [
            self.k.group("dlq", "item", record.id),
            self.k.group("dlq", "index"),
            self.k.group("dlq", "codes"),
            self.k.group("dlq", "business", b if b is not None else "none"),
            self.k.group("dlq", "codes", b if b is not None else "none"),
        ]
        args: list[str | int] = [
            record.id,
            record.error_code,
            mode,
            record.model_dump_json(),
            keep_s,
            int(b is not None),
        ]
        return bool(script(self.r, "dlq_settle")(keys=keys, args=args))


class FailureLog:
    """Per write (idempotency key): first and last transient failure and the attempt count.

    It bounds retries by total age across messages, processes and restarts.
    """

    def __init__(self, client: Any, keys: Keys, ttl_s: int) -> None:
        self.r = client
        self.k = keys
        self.ttl_s = ttl_s

    def record(self, idempotency_key: str, now_ms: int, *, restart_clock: bool = False) -> tuple[int, int]:
        """Count one more failed attempt; returns (attempts, first failure ms).

        ``restart_clock`` (during a klikit outage) makes this failure the first one, so that the
        write's age towards ``retry_max_age_s`` counts from now.
        """
        key = self.k("failures", idempotency_key)
        pipe = self.r.pipeline(transaction=True)
        if restart_clock:
            pipe.hset(key, "first", now_ms)
        else:
            pipe.hsetnx(key, "first", now_ms)
        pipe.hincrby(key, "attempts", 1)
        pipe.hset(key, "last", now_ms)
        pipe.expire(key, self.ttl_s)
        pipe.hget(key, "first")
        _, attempts, _, _, first = pipe.execute()
        return int(attempts), int(first)

    def clear(self, idempotency_key: str) -> None:
        self.r.delete(self.k("failures", idempotency_key))
