"""The sandbox for ``bench.scale``'s end-to-end sizes (``python -m bench.scale_sandbox``).

``devstack.sandbox`` seeds at most 5,000 benchmark businesses (its ``SeedConfig`` bound). The scale
run needs up to 10,000, so this starts the same ASGI app under uvicorn and adds the businesses past
the bound to its world with the sandbox's own seed functions (``bench_layout`` / ``build_business``,
credential ``pk_B`` / ``sk_B_sandbox``): the same ids, stores, items and credentials the sandbox
would give them. ``POST /_sandbox/reset`` reseeds only the first 5,000 (the scale run never resets).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from devstack.sandbox.app import SandboxApp, create_app
from devstack.sandbox.config import split_options
from devstack.sandbox.seed import ALL_SCOPES, bench_layout, build_business
from devstack.sandbox.world import Credential

#: ``SeedConfig``'s bound on benchmark businesses.
SEED_MAX = 5_000


def build_app(businesses: int, stores: int, items: int, max_calls: int) -> SandboxApp:
    config = split_options(
        {
            "businesses": min(businesses, SEED_MAX),
            "stores_per_business": stores,
            "items_per_business": items,
            "max_calls": max_calls,
        }
    )
    app = create_app(config)
    world = app.state.world
    for k in range(SEED_MAX + 1, businesses + 1):
        biz = build_business(bench_layout(k, stores, items))
        world.businesses[biz.id] = biz
        key = f"pk_{biz.id}"
        world.credentials[key] = Credential(key, f"sk_{biz.id}_sandbox", biz.id, ALL_SCOPES)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.scale_sandbox", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--businesses", type=int, required=True)
    p.add_argument("--stores-per-business", type=int, default=3)
    p.add_argument("--items-per-business", type=int, default=200)
    p.add_argument("--max-calls", type=int, default=200_000)
    args = p.parse_args(argv)
    app = build_app(args.businesses, args.stores_per_business, args.items_per_business, args.max_calls)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="on")


if __name__ == "__main__":
    main()
