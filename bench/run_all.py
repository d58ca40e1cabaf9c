"""``make bench``: run every benchmark, each in its own process, then write bench/results/REPORT.md.

``python -m bench.run_all [--quick]``: ``--quick`` runs the short lunch rush instead of the full one
and smaller counts elsewhere (for a smoke run; the report says which scale each result used).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.common import write_report

FULL: list[list[str]] = [
    ["bench.burst"],
    ["bench.receiver"],
    ["bench.throughput"],
    ["bench.lunch_rush"],
    ["bench.drift"],
    ["bench.history"],
    ["bench.recovery"],
    ["bench.scale"],
    ["bench.fairness"],
]
QUICK: list[list[str]] = [
    ["bench.burst", "--steady-s", "8"],
    ["bench.receiver", "--requests", "2000", "--open-s", "4", "--api-requests", "100"],
    ["bench.throughput", "--n", "5000"],
    ["bench.lunch_rush", "--scale", "short"],
    ["bench.drift", "--samples", "8"],
    ["bench.history", "--n", "1000", "--paced-s", "3", "--rounds", "2"],
    ["bench.recovery", "--trials", "2", "--broker-trials", "1", "--lease-s", "10", "--rolling-s", "12"],
    ["bench.scale", "--quick"],
    ["bench.fairness", "--noisy", "20", "--burst", "1000", "--tail-s", "3"],
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", default=None, help="module names to run, e.g. bench.burst")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.only:
        plan = [p for p in plan if p[0] in args.only]
    failed: list[str] = []
    for cmd in plan:
        started = time.monotonic()
        print(f"== {' '.join(cmd)}", flush=True)
        code = subprocess.call([sys.executable, "-m", *cmd])
        print(f"== {cmd[0]} exited {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(cmd[0])
    path = write_report()
    print(f"report: {path}")
    if subprocess.call([sys.executable, "-m", "bench.plots"]) != 0:
        failed.append("bench.plots")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
