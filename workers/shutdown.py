"""The worker process is stopping (SIGTERM): flushes finish the call in hand and hand over.

:data:`WORKER_STOPPING` is set by the :class:`workers.middleware.ShutdownSignal` middleware when
Dramatiq begins its graceful shutdown, and cleared when a worker boots. A flush checks it
before every klikit write: once set, it stops, releases its lease at once and leaves the rest
to a retry message (another worker, or this one after a restart, picks it up).
"""

from __future__ import annotations

import threading

WORKER_STOPPING = threading.Event()
