"""Dramatiq queue names: one set per deployment, named after its key prefix.

RabbitMQ has no namespace of its own: two deployments (or two test runs) on one vhost with fixed
queue names would take each other's messages and fail them for want of the other's credentials.
So every queue is ``<prefix>-<lane>``; with the default prefix that is the historical
``menusync-flush`` and so on. (The Redis broker also keeps them under ``<prefix>-dramatiq``.)

A deployment whose prefix is not the default sees its queues renamed once on upgrade; nothing in the
old queues is lost, because the ledger holds every pending change and the sweeper re-sends a flush
or a publish that no message carries (design.md section 1.5).
"""

from __future__ import annotations

#: The lanes, in the order status shows them.
LANES = ("flush", "flush-backlog", "publish", "reconcile")


def queue_name(prefix: str, lane: str) -> str:
    """The queue of ``lane`` for the deployment with key prefix ``prefix``."""
    if lane not in LANES:
        raise ValueError(f"unknown queue lane {lane!r}; known: {', '.join(LANES)}")
    return f"{prefix}-{lane}"


def queue_names(prefix: str) -> tuple[str, ...]:
    """Every queue of the deployment with key prefix ``prefix``."""
    return tuple(queue_name(prefix, lane) for lane in LANES)
