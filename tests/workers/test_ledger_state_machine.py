"""The ledger's scripts against a plain Python model, under interleavings hypothesis chooses.

A flush is split into separate steps, as it runs in a worker: read pending, then (later, call by
call) settle what was read as applied, dead-lettered or ambiguous (suspect), or leave it pending
(a transient failure). Producers record between any two steps and, through ``InterleavingRedis``
(tests/workers/interleaving.py), also *inside* a pending read: after the read's n-th Redis command,
with n chosen by hypothesis. Operators' replays (unblock, with or without a new key) and the repeat
of ambiguous writes (repend_due_suspects) come in between too.

Everything runs on the real Redis with the real Lua scripts, under a key prefix of each run's own.
Checked:

- a target is never marked applied at a version whose value is not the one the flush wrote;
- the ledger's hashes and sets are the model's after every step;
- drained at the end (read pending and settle until nothing is pending), every target's newest
  version is applied or dead-lettered, and the value "written to klikit" for an applied one is the
  newest value.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from interleaving import InterleavingRedis, interleaving_client

from config.redis import Keys, connect, delete_prefix
from workers.changes import Change, Store, Target
from workers.clock import now_ms
from workers.ledger import Ledger, PendingRow
from workers.scripts import script

BUSINESS = 398
STORES = (Store(brand_id=5297, branch_id=1293), Store(brand_id=5297, branch_id=5913))
TARGETS = tuple(
    Target(business_id=BUSINESS, store=store, level="item", entity_id=item, field="enabled")
    for store in STORES
    for item in (101, 102)
)
KEYS = tuple(t.key() for t in TARGETS)
#: How far behind the producers' clock a change's event time is: mostly in order, some late
#: (out of order, or at the very time of an earlier change).
AGE_MS = st.sampled_from([0, 0, 1_000, 2_500])


@dataclass(frozen=True)
class Spec:
    """A change as a producer makes it: which target, how late its event time is, the value."""

    target: int
    age_ms: int
    value: bool


SPECS = st.builds(Spec, target=st.integers(0, len(TARGETS) - 1), age_ms=AGE_MS, value=st.booleans())
#: Which rows of the flush in flight one klikit call carries: bit i is row i, ``None`` every row.
ROWS = st.none() | st.integers(1, 2 ** len(TARGETS) - 1)
#: How a klikit call ended: applied; refused for good; timed out (and klikit took it, or not); or
#: failed for now (its rows stay pending for a later flush).
OUTCOMES = st.just("applied") | st.sampled_from(["dead", "timeout_landed", "timeout_lost", "transient"])


@dataclass
class Model:
    """What the ledger should hold, per target key."""

    desired: dict[str, tuple[Any, str]] = field(default_factory=dict)  # value, version
    applied: dict[str, str] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)
    dead: dict[str, str] = field(default_factory=dict)  # dead-letter id
    nonce: dict[str, int] = field(default_factory=dict)
    suspect: set[str] = field(default_factory=set)
    value_of: dict[tuple[str, str], Any] = field(default_factory=dict)  # (key, version) -> its value
    versions: dict[str, list[str]] = field(default_factory=dict)  # every version a target had, oldest first

    def record(self, key: str, at_ms: int, value: Any, version: str | None) -> None:
        current = self.desired.get(key)
        # Newest event time wins; an equal event time is tie-broken by ingest order (the later wins),
        # except that the stored change again (same event time, same value) is a duplicate.
        same = current is not None and at_ms == int(current[1].split(".")[0]) and value == current[0]
        wins = not same and (current is None or at_ms >= int(current[1].split(".")[0]))
        assert (version is not None) == wins, f"{key}: record at {at_ms} answered {version!r}, model {current}"
        if version is None:
            return
        assert version.startswith(f"{at_ms:015d}."), version
        self.desired[key] = (value, version)
        self.value_of[key, version] = value
        self.versions.setdefault(key, []).append(version)
        self.dead.pop(key, None)
        if key not in self.applied or self.applied[key] < version:
            self.pending.add(key)

    def settle(self, key: str, version: str, dead_id: str | None) -> None:
        if dead_id is None and (key not in self.applied or self.applied[key] < version):
            self.applied[key] = version
        if key not in self.desired or self.desired[key][1] <= version:
            self.pending.discard(key)
            if dead_id is not None:
                self.dead[key] = dead_id

    def unblock(self, key: str, version: str, new_key: bool) -> int:
        if key not in self.desired or self.desired[key][1] != version:
            return 0
        self.dead.pop(key, None)
        self.pending.add(key)
        if new_key:
            self.nonce[key] = self.nonce.get(key, 0) + 1
        return 1

    def repend_suspects(self) -> int:
        back = 0
        for key in self.suspect:
            if key in self.desired:
                self.nonce[key] = self.nonce.get(key, 0) + 1
                self.pending.add(key)
                back += 1
        self.suspect.clear()
        return back


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        url = os.environ["REDIS_URL"]
        # Under the run's prefix (tests/conftest.py puts RUN_PREFIX in MENUSYNC_PREFIX), one per machine run.
        self.prefix = f"{os.environ['MENUSYNC_PREFIX']}-ledger-sm-{uuid.uuid4().hex[:8]}"
        self.keys = Keys(self.prefix)
        self.plain = connect(url)
        self.reader_client: InterleavingRedis = interleaving_client(url)
        self.writer = Ledger(self.plain, self.keys)  # producers, settles, operators
        self.reader = Ledger(self.reader_client, self.keys)  # the flush's pending read
        self.model = Model()
        self.clock_ms = 10_000  # the producers' clock: a new change happens 1 s after the previous one
        self.sent: list[Change] = []
        # Rows of the flush under way, not settled yet (one flush at a time: the lease). The flush
        # ends when every row it read was settled (or left pending by a transient failure).
        self.in_flight: list[PendingRow] | None = None
        self.klikit: dict[str, tuple[Any, str | None]] = {}  # key -> value written, version settled at
        self.dead_letters = 0

    # -- producers ---------------------------------------------------------------------------------
    def _send(self, change: Change) -> None:
        [version] = self.writer.record([change])
        self.model.record(change.target.key(), change.occurred_at_ms, change.value, version)

    def _record(self, spec: Spec) -> None:
        self.clock_ms += 1_000
        change = Change(
            id=f"sm-{len(self.sent)}",
            target=TARGETS[spec.target],
            value=spec.value,
            occurred_at_ms=self.clock_ms - spec.age_ms,
        )
        self.sent.append(change)
        self._send(change)

    @rule(spec=SPECS)
    def record(self, spec: Spec) -> None:
        self._record(spec)

    @precondition(lambda self: self.sent)
    @rule(index=st.integers(0, 1_000))
    def redeliver(self, index: int) -> None:
        """A change sent again, as it was (a producer's retry)."""
        self._send(self.sent[index % len(self.sent)])

    # -- the flush ---------------------------------------------------------------------------------
    @precondition(lambda self: self.in_flight is None)
    @rule(landings=st.lists(st.none() | SPECS, max_size=8))
    def read_pending(self, landings: list[Spec | None]) -> None:
        """The flush reads pending while producers record: ``landings[i]`` lands after the read's command i+1.

        A landing change's target is taken among the targets pending when the read starts (its index
        modulo their number): the ones a record racing the read could split.
        """
        pending = sorted(self.model.pending) or list(KEYS)
        specs = [
            None if s is None else Spec(KEYS.index(pending[s.target % len(pending)]), s.age_ms, s.value)
            for s in landings
        ]
        sent: list[str] = []

        def hook(name: str, args: tuple[Any, ...]) -> None:
            sent.append(name)
            if len(sent) <= len(specs) and (spec := specs[len(sent) - 1]) is not None:
                self._record(spec)

        self.reader_client.after_command = hook  # type: ignore[method-assign]
        try:
            rows = self.reader.pending(BUSINESS)
        finally:
            self.reader_client.after_command = InterleavingRedis.after_command  # type: ignore[method-assign]
        for spec in specs[len(sent) :]:
            if spec is not None:
                self._record(spec)  # the read was shorter: these producers come right after it
        keys = [row.target.key() for row in rows]
        assert len(set(keys)) == len(keys), keys
        for row in rows:
            assert row.version in self.model.versions.get(row.target.key(), []), row
            assert row.nonce == self.model.nonce.get(row.target.key(), 0), row
        # Bit i of a settle's mask is row i in target order: the pending order (by the ms a target became
        # pending) differs from run to run, and the rules hypothesis can pick next must not.
        self.in_flight = sorted(rows, key=lambda row: row.target.key()) or None

    def _write_and_mark_applied(self, rows: list[PendingRow]) -> None:
        """One klikit call carrying ``rows`` succeeded: klikit holds each row's value, settled at its version."""
        for row in rows:
            key = row.target.key()
            # The invariant: the version marked applied is the version of the value written.
            assert self.model.value_of[key, row.version] == row.value, (
                f"{key}: klikit was written {row.value!r} but version {row.version} "
                f"(value {self.model.value_of[key, row.version]!r}) is marked applied"
            )
            self.klikit[key] = (row.value, row.version)
        self.writer.mark_applied(BUSINESS, [(row.target.key(), row.version) for row in rows])
        for row in rows:
            self.model.settle(row.target.key(), row.version, None)

    @precondition(lambda self: self.in_flight)
    @rule(which=ROWS, outcome=OUTCOMES)
    def settle(self, which: int | None, outcome: str) -> None:
        """One klikit call carrying some of the rows read ended; its rows are settled as a flush does."""
        assert self.in_flight is not None
        mask = -1 if which is None else which  # -1: every bit set
        rows = [row for i, row in enumerate(self.in_flight) if mask >> i & 1]
        self.in_flight = [row for i, row in enumerate(self.in_flight) if not mask >> i & 1] or None
        if not rows:
            return
        pairs = [(row.target.key(), row.version) for row in rows]
        if outcome == "applied":
            self._write_and_mark_applied(rows)
        elif outcome == "dead":
            self.dead_letters += 1
            dead_id = f"dl-{self.dead_letters}"
            self.writer.mark_dead(BUSINESS, pairs, dead_id)
            for key, version in pairs:
                self.model.settle(key, version, dead_id)
        elif outcome == "transient":
            pass  # not settled: the rows stay pending, for the flush's retry
        else:  # the outcome is unknown: klikit may have taken the write; its targets become suspects
            if outcome == "timeout_landed":
                self.klikit.update({row.target.key(): (row.value, None) for row in rows})
            self.writer.mark_suspect(BUSINESS, [key for key, _ in pairs], 0)  # due at once
            self.model.suspect |= {key for key, _ in pairs}

    # -- the sweeper and operators ---------------------------------------------------------------
    @precondition(lambda self: self.model.suspect)
    @rule()
    def repend_due_suspects(self) -> None:
        assert self.writer.repend_due_suspects(BUSINESS) == self.model.repend_suspects()

    @precondition(lambda self: self.model.dead)
    @rule(index=st.integers(0, 1_000), stale=st.booleans(), new_key=st.booleans())
    def unblock(self, index: int, stale: bool, new_key: bool) -> None:
        """An operator replays a dead letter (``stale``: one whose target has an older version than now)."""
        key = sorted(self.model.dead)[index % len(self.model.dead)]
        versions = self.model.versions[key]
        version = versions[0] if stale else self.model.desired[key][1]
        expected = self.model.unblock(key, version, new_key)
        assert self.writer.unblock(BUSINESS, [(key, version)], new_key=new_key) == expected

    @rule(stale_ms=st.sampled_from([0, 60_000]))
    def sweep(self, stale_ms: int) -> None:
        """The sweeper claims what its index says is due and re-files it (its attention scripts)."""
        k = self.keys
        index = [k.attention_of(BUSINESS, kind) for kind in ("pending", "suspect", "publish")]
        claimed = script(self.plain, "attention_claim")(keys=index, args=[now_ms(), stale_ms, 60_000, 100, 10_000])
        for business in claimed:
            keys = [
                k.business(business, "pending"),
                k.business(business, "suspect"),
                k.business(business, "publish"),
                *index,
            ]
            script(self.plain, "attention_refile")(keys=keys, args=[business])

    # -- checks ----------------------------------------------------------------------------------
    @invariant()
    def the_sweeper_index_is_never_late(self) -> None:
        """A business with pending targets or suspects has an attention entry at or before their time."""
        k = self.keys
        for name in ("pending", "suspect"):
            first = self.plain.zrange(k.business(BUSINESS, name), 0, 0, withscores=True)
            if first:
                filed = self.plain.zscore(k.attention_of(BUSINESS, name), str(BUSINESS))
                assert filed is not None and filed <= float(first[0][1]), (name, filed, first)

    @invariant()
    def ledger_matches_the_model(self) -> None:
        k, m = self.keys, self.model
        pipe = self.plain.pipeline(transaction=True)
        for name in ("dver", "aver", "dead", "nonce"):
            pipe.hgetall(k.business(BUSINESS, name))
        for name in ("pending", "suspect"):
            pipe.zrange(k.business(BUSINESS, name), 0, -1)
        dver, aver, dead, nonce, pending, suspect = pipe.execute()
        assert dver == {key: version for key, (_, version) in m.desired.items()}
        assert aver == m.applied
        assert dead == m.dead
        assert {key: int(n) for key, n in nonce.items()} == m.nonce
        assert set(pending) == m.pending
        assert set(suspect) == m.suspect

    def teardown(self) -> None:
        try:
            self._drain_and_check()
        finally:
            delete_prefix(self.plain, self.prefix + ":")
            self.plain.close()
            self.reader_client.close()

    def _drain_and_check(self) -> None:
        """Flush until nothing is pending; then the newest version of every target is applied or dead."""
        self.in_flight = None
        assert self.writer.repend_due_suspects(BUSINESS) == self.model.repend_suspects()
        for _ in range(len(TARGETS) + 1):
            rows = self.reader.pending(BUSINESS)
            if not rows:
                break
            self._write_and_mark_applied(rows)
        assert self.writer.pending_count(BUSINESS) == 0
        applied = self.plain.hgetall(self.keys.business(BUSINESS, "aver"))
        dead = self.writer.dead_targets(BUSINESS)
        for key, (value, version) in self.model.desired.items():
            if key in dead:
                continue
            got = applied.get(key)
            assert got == version, f"{key}: newest {version} neither applied ({got!r}) nor dead"
            assert self.klikit.get(key) == (value, version), (
                f"{key}: klikit holds {self.klikit.get(key)}, newest {value!r}"
            )


LedgerMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("LEDGER_SM_EXAMPLES", "150")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerStateMachine = LedgerMachine.TestCase
