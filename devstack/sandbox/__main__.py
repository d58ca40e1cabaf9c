"""``python -m devstack.sandbox --port N``: run the sandbox under uvicorn.

Seed flags: ``--businesses``, ``--stores-per-business``, ``--items-per-business``, ``--max-calls``.
Fault flags: ``--downstream-rate``, ``--latency-ms``, ``--hang-rate``, ``--hang-s``, ``--drop-rate``,
``--drop-phase``, ``--rate-per-minute``, ``--rate-burst``, ``--rate-limit-headers``, ``--writes-only``,
``--fault-seed``. Logs are quiet (warnings only) unless ``--log-level`` says otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uvicorn

from devstack.sandbox.app import create_app
from devstack.sandbox.config import SandboxConfig, split_options


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="klikit-sandbox", description="A local klikit partner API with fault injection.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    seed = p.add_argument_group("seed")
    seed.add_argument("--businesses", type=int, default=0, help="benchmark businesses besides demo 398")
    seed.add_argument("--stores-per-business", type=int, default=3)
    seed.add_argument("--items-per-business", type=int, default=300)
    seed.add_argument("--max-calls", type=int, default=200_000, help="size of the call record")
    faults = p.add_argument_group("faults")
    faults.add_argument("--downstream-rate", type=float, default=0.0)
    faults.add_argument("--latency-ms", type=int, default=0)
    faults.add_argument("--hang-rate", type=float, default=0.0)
    faults.add_argument("--hang-s", type=float, default=0.0)
    faults.add_argument("--drop-rate", type=float, default=0.0)
    faults.add_argument("--drop-phase", choices=["before", "after"], default="before")
    faults.add_argument("--rate-per-minute", type=int, default=None)
    faults.add_argument("--rate-burst", type=int, default=0)
    faults.add_argument("--rate-limit-headers", action="store_true")
    faults.add_argument("--writes-only", action="store_true")
    faults.add_argument("--fault-seed", type=int, default=None)
    return p


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    options = {k: v for k, v in vars(args).items() if k not in ("host", "port", "log_level")}
    return split_options(options)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except (ValueError, TypeError) as exc:
        print(f"klikit-sandbox: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    uvicorn.run(
        create_app(config),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.log_level in ("info", "debug"),
        lifespan="on",
        timeout_graceful_shutdown=3,
    )


if __name__ == "__main__":
    main()
