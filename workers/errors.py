"""The exceptions the pipeline's actors switch on."""

from __future__ import annotations

import dramatiq


class FlushDeferred(dramatiq.Retry):
    """The flush (or publish, or read) must run again after ``delay`` ms: transient failure, 429, breaker open."""


class UnreadablePayload(Exception):
    """A message whose payload cannot be acted on; dead-lettered at once, never retried."""
