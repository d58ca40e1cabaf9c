"""The production scheduler with every sweeper pass timed (``python -m bench.scale_scheduler``).

``bench.scale`` runs this in place of ``python -m producers.scheduler``: the same ``main`` and loop,
with ``workers.sweeper.sweep_once`` wrapped so that each pass appends one JSON line (wall time it
ended, seconds it took, its counts) to the file named by ``MENUSYNC_BENCH_SWEEP_LOG``. The wrapper
costs a clock read and one short file append per pass (every ``sweep_interval_s``, 2 s by default).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import workers.sweeper as sweeper
from workers.queue_wait import QueueWait
from workers.runtime import runtime


def _timed(original: Any, log_path: str) -> Any:
    def sweep_once(rt: Any = None) -> dict[str, int]:
        started = time.perf_counter()
        counts: dict[str, int] = original(rt)
        took = time.perf_counter() - started
        state = rt or runtime()
        wait = QueueWait(state.redis, state.keys).current_ms()  # after the timing: not in it
        with open(log_path, "a") as out:
            out.write(json.dumps({"at": time.time(), "s": took, "queue_wait_ms": wait, **counts}) + "\n")
        return counts

    return sweep_once


def main() -> None:
    sweeper.sweep_once = _timed(sweeper.sweep_once, os.environ["MENUSYNC_BENCH_SWEEP_LOG"])  # type: ignore[assignment]
    from producers.scheduler import main as scheduler_main

    scheduler_main(sys.argv[1:])


if __name__ == "__main__":
    main()
