"""Dramatiq middleware of the pipeline: plain hooks.

- :class:`LogContext` configures logging in a booted worker process and binds the actor
  and message id to every log line of a message.
- :class:`DeadLetters` sees every final failure (exhausted retries, ``throws``,
  age limit) and records it in the dead-letter store, so no message vanishes silently.
- :class:`ShutdownSignal` tells running flushes that the worker is stopping, so that they
  hand over (lease released at once) instead of working through their whole backlog.
- :class:`LayoutCheck` keeps a worker from booting on keys of the legacy layout (it would not
  see the changes they hold; ``menusync migrate-keys`` moves them).
- :class:`QueueWaitNote` notes how late each flush message starts (``workers.queue_wait``), so the
  sweeper tells a flush message waiting behind a long queue from a lost one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import dramatiq
import redis
import structlog
from dramatiq.common import q_name
from dramatiq.middleware import MiddlewareError
from prometheus_client import Counter

from config.logging import scrub
from workers.clock import now_ms
from workers.deadletters import DeadLetterStore, build_dead_letter
from workers.key_migration import LegacyLayout
from workers.queue_wait import QueueWait, message_wait_ms

log = structlog.get_logger("menusync.middleware")


class LogContext(dramatiq.Middleware):
    """``configure`` sets up logging; it is called once a worker process has booted (not at import time)."""

    def __init__(self, configure: Callable[[], None]) -> None:
        self.configure = configure

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        self.configure()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        structlog.contextvars.bind_contextvars(actor=message.actor_name, message_id=message.message_id)

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        structlog.contextvars.clear_contextvars()

    after_skip_message = after_process_message  # type: ignore[assignment]


class StateUnusable(MiddlewareError):
    """The worker must not boot on this Redis (Dramatiq lets only a MiddlewareError stop a boot)."""


class LayoutCheck(dramatiq.Middleware):
    """``check`` raises :class:`~workers.key_migration.LegacyLayout` when Redis holds keys of the
    legacy layout: the worker then refuses to boot, before it takes a message, with the reason.
    A Redis that does not answer yet is not a reason: the boot goes on (the consumer reconnects)."""

    def __init__(self, check: Callable[[], None]) -> None:
        self.check = check

    def before_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        try:
            self.check()
        except LegacyLayout as exc:
            log.critical("worker refuses to boot", reason=str(exc))
            raise StateUnusable(str(exc)) from exc
        except (redis.RedisError, OSError):
            log.warning("key layout not checked: redis does not answer", exc_info=True)


class ShutdownSignal(dramatiq.Middleware):
    """Sets ``stopping`` while the worker shuts down gracefully (cleared once it is down, or a worker boots)."""

    def __init__(self, stopping: threading.Event) -> None:
        self.stopping = stopping

    def before_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        self.stopping.clear()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        log.info("worker stopping: flushes hand over after the call in hand")
        self.stopping.set()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self.stopping.clear()  # its threads are done; a process that goes on (tests, tools) flushes normally


class QueueWaitNote(dramatiq.Middleware):
    """``lanes`` maps a queue name to its flush lane; ``waits`` answers where to note a wait (the
    process's runtime is built lazily). A note that fails is logged and never fails the message."""

    def __init__(self, lanes: dict[str, str], waits: Callable[[], QueueWait]) -> None:
        self.lanes = lanes
        self.waits = waits

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        lane = self.lanes.get(q_name(message.queue_name))
        if lane is None:
            return
        wait = message_wait_ms(message.options, int(message.message_timestamp), now_ms())
        try:
            self.waits().note(lane, wait)
        except Exception:
            log.warning("could not note a flush message's queue wait", lane=lane, exc_info=True)


class DeadLetters(dramatiq.Middleware):
    """``store`` answers the dead-letter store when a message has failed for good (the process's
    runtime is built lazily, after the broker); ``counter`` is the dead-letter metric, by code."""

    def __init__(self, store: Callable[[], DeadLetterStore], counter: Counter) -> None:
        self.store = store
        self.counter = counter

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        if exception is None or not message.failed:
            return
        self._record(message, type(exception).__name__, str(exception))

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        if message.failed:
            self._record(message, "message_skipped", "skipped (age limit reached or skipped by middleware)")

    def _record(self, message: Any, code: str, reason: str) -> None:
        args = list(message.args or [])
        business_id = args[0] if args and isinstance(args[0], int) else None
        record = build_dead_letter(
            kind="message",
            business_id=business_id,
            code=message_error_code(code),
            reason=reason,
            actor=message.actor_name,
            message_id=message.message_id,
            body={"args": [scrub(repr(a))[:200] for a in args]},
            attempts=int(message.options.get("retries", 0)) + 1,
            first_failure_ms=int(message.message_timestamp),
        )
        try:
            self.store().add(record)
            self.counter.labels(code=record.error_code).inc()
            log.error("message dead-lettered", dead_letter_id=record.id, code=record.error_code, reason=record.reason)
        except Exception:  # the store is down: the log line is the record of last resort
            log.exception("could not record dead letter", code=record.error_code, reason=record.reason)


def message_error_code(exception_name: str) -> str:
    """Dead-letter code of a message-level failure: ``unreadable_payload`` etc., snake-cased."""
    out = []
    for i, ch in enumerate(exception_name):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
