"""The scheduler process: fires timed re-enables and runs the ledger sweeper.

``python -m producers.scheduler`` loops until SIGTERM / SIGINT:

- :func:`run_due` claims the timers due now, records each re-enable with the version check
  (``expect_versions``: skipped if a newer change for the target came first) and completes them;
- every ``settings.sweep_interval_s`` it calls ``workers.sweeper.sweep_once()`` when that module
  exists (the safety net for a lost flush nudge);
- on start it moves every claimed timer back to due (the claims of a scheduler that died), and every
  second those claimed more than ``STALE_CLAIM_MS`` ago (a tick that failed between claim and record);
- every minute it removes dead letters older than ``settings.dead_letter_retention_days``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import structlog
from pydantic import ValidationError

from config.logging import configure_logging
from config.settings import get_settings, validation_summary
from producers.metrics import TIMERS
from producers.runtime import context
from producers.timers import Timer, Timers
from workers import clock
from workers.changes import Change
from workers.deadletters import DeadLetterStore, build_dead_letter
from workers.key_migration import refuse_legacy_layout

log = structlog.get_logger("producers.scheduler")

#: A claimed timer is recorded within milliseconds; one claimed this long ago was abandoned (fired again).
STALE_CLAIM_MS = 5_000
#: How often the loop looks for abandoned claims.
RECOVER_EVERY_S = 1.0
#: How often dead letters past the retention period are looked for.
PURGE_EVERY_S = 60.0


@dataclass(frozen=True)
class RunDueResult:
    fired: int
    cancelled: int
    dropped: int


def run_due(now_ms: int | None = None, *, timers: Timers | None = None, limit: int = 500) -> RunDueResult:
    """Fire every timer due at ``now_ms`` (default: now). Answers what happened."""
    from workers.submit import submit_changes

    timers = timers or Timers(*context())
    now = clock.now_ms() if now_ms is None else now_ms
    fired = cancelled = dropped = 0
    while True:
        due, broken = timers.claim_due(now, limit)
        if broken:
            log.error("timers with unreadable data dropped", ids=broken)
            timers.complete(broken)
            dropped += len(broken)
            TIMERS.labels("dropped").inc(len(broken))
        if not due:
            break
        good, changes = split_runnable(due, timers)
        dropped += len(due) - len(good)
        if good:
            result = submit_changes(changes, expect_versions=[t.expect_version for t in good], source="timer")
            won = sum(1 for o in result.outcomes if o.won)
            fired += won
            cancelled += len(good) - won
            TIMERS.labels("fired").inc(won)
            TIMERS.labels("cancelled").inc(len(good) - won)
        timers.complete([t.id for t in due])
        if len(due) < limit:
            break
    if fired or cancelled:
        log.info("timers run", fired=fired, cancelled=cancelled)
    return RunDueResult(fired, cancelled, dropped)


def split_runnable(due: list[Timer], timers: Timers) -> tuple[list[Timer], list[Change]]:
    """The timers whose re-enable can be recorded, with their changes; each other one is dead-lettered
    on its own (``timer_invalid``, with the reason), so that one poisoned timer never holds up the rest."""
    good: list[Timer] = []
    changes: list[Change] = []
    for timer in due:
        try:
            change = timer.reenable()
        except ValueError as exc:
            reason = validation_summary(exc) if isinstance(exc, ValidationError) else str(exc)
            record = DeadLetterStore(timers.client, timers.keys).add(
                build_dead_letter(
                    kind="timer",
                    business_id=timer.target.business_id,
                    change_ids=[timer.change_id],
                    code="timer_invalid",
                    reason=f"timed re-enable of {timer.target.key()} at {timer.until_ms} cannot run: {reason}",
                )
            )
            TIMERS.labels("dropped").inc()
            log.error("timer dead-lettered", timer_id=timer.id, dead_letter_id=record.id, reason=reason)
            continue
        good.append(timer)
        changes.append(change)
    return good, changes


def purge_dead_letters(timers: Timers, retention_days: float) -> int:
    """Remove open dead letters past the retention period; logs and answers the count."""
    cutoff = clock.now_ms() - int(retention_days * 86_400_000)
    store = DeadLetterStore(timers.client, timers.keys)
    removed = 0
    while True:
        batch = store.purge_before(cutoff)
        removed += batch
        if batch < 1_000:
            break
    if removed:
        log.info("dead letters past the retention period removed", removed=removed, retention_days=retention_days)
    return removed


def load_sweeper() -> Callable[[], Any] | None:
    """``workers.sweeper.sweep_once`` if that module exists."""
    try:
        module = importlib.import_module("workers.sweeper")
    except ModuleNotFoundError as exc:
        if exc.name not in ("workers.sweeper", "workers"):
            raise
        return None
    sweep = getattr(module, "sweep_once", None)
    return sweep if callable(sweep) else None


def loop(stop: threading.Event, *, timers: Timers, sweep_interval_s: float, tick_s: float = 0.25) -> None:
    sweep = load_sweeper()
    if sweep is None:
        log.info("no workers.sweeper module; running timers only")
    timers.recover(clock.now_ms(), 0)  # at start, every claimed timer belonged to a process now gone
    last_sweep = last_recover = last_purge = time.monotonic()
    while not stop.is_set():
        try:
            run_due(timers=timers)
            now = time.monotonic()
            if sweep is not None and now - last_sweep >= sweep_interval_s:
                last_sweep = now
                sweep()
            if now - last_recover >= RECOVER_EVERY_S:
                last_recover = now
                timers.recover(clock.now_ms(), STALE_CLAIM_MS)
            if now - last_purge >= PURGE_EVERY_S:
                last_purge = now
                purge_dead_letters(timers, get_settings().dead_letter_retention_days)
        except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError) as exc:
            log.warning("redis unavailable; retrying", error=str(exc))
        except Exception:
            log.exception("scheduler tick failed")
        next_due = None
        with contextlib.suppress(redis.RedisError):
            next_due = timers.next_due_ms()
        wait = tick_s if next_due is None else min(tick_s, max(0.0, (next_due - clock.now_ms()) / 1000))
        stop.wait(wait)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m producers.scheduler", description="Timed re-enables and sweeps.")
    parser.add_argument("--tick-s", type=float, default=0.25)
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    client, keys = context(settings)
    refuse_legacy_layout(client, keys)
    timers = Timers(client, keys)
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("stopping scheduler", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("scheduler started", sweep_interval_s=settings.sweep_interval_s)
    loop(stop, timers=timers, sweep_interval_s=settings.sweep_interval_s, tick_s=args.tick_s)
    log.info("scheduler stopped")


if __name__ == "__main__":
    main()
