"""``make demo`` (``python -m bench.demo``): a lunch service through the whole running system.

It starts the dev stack as subprocesses (an embedded Redis on a free port with its data under
``var/demo/redis``, the klikit sandbox, and the web, worker, scheduler and inventory processes as
the Procfile names them), imports the POS id mappings with ``menusync mappings import``, and
sends a lunch service through the real entry points:

- signed Square and Shopify stock webhooks (stock-outs, restocks, a duplicate delivery of each,
  and a restock that arrives before the older stock-out it supersedes);
- inventory stream entries (a stock-out, a restock, a duplicate event id);
- a schedule edit as a signed Standard Webhook, and channel visibility changes through
  ``/v1/changes`` ("hide item 112 on GrabFood at central and north", later "also hide it on
  ShopeeFood at central"): each hides the item on the channel it names and nowhere else.

Meanwhile the sandbox answers some writes with 502 (``PUT /_sandbox/faults``) and one write with an
idempotency conflict (``POST /_sandbox/script``), which is dead-lettered. When the pipeline has
settled, the demo compares the sandbox's published menus (``effective_published``) with the final
state the events call for, the dead-lettered write excepted and explained. For visibility it reads
the published map as klikit does (a channel missing from it is hidden) and checks every channel:
the ones a change named, and the ones no change named, which must still show what they showed
before the service (item 112 stays visible on klikit's own marketplace after "hide on GrabFood"); then it replays that
dead letter as an operator would (``menusync dlq replay ID --new-key``) and checks again, everything
included. Finally a new store opens (``menusync stores populate``, then published) and the menu gains
an item (``menusync items create`` twice under one ``--request-id``: created once). It prints a
summary and exits 0 only when both checks match and the store and item are there.

Options: ``--keep`` leaves the stack running at the end until Ctrl-C (try ``menusync status`` with
the printed environment); ``--fault-rate`` sets the share of writes answered with 502.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis
from rich.console import Console
from rich.table import Table

from config.redis import Keys, connect
from devstack.embedded_redis import EmbeddedRedis, free_port
from devstack.sandbox.testing import SandboxProcess
from devstack.stack import (
    INVENTORY_ARGV,
    SCHEDULER_ARGV,
    WEB_ARGV,
    WORKER_ARGV,
    ServiceProcess,
    stack_env,
    write_credentials,
)
from producers.signatures import sign_shopify, sign_square, sign_standard

ROOT = Path(__file__).resolve().parent.parent
BUSINESS = 398
CENTRAL, NORTH, MALL = "5297:1293", "5297:5913", "1615:1294"
STORES = {CENTRAL: (5297, 1293), NORTH: (5297, 5913), MALL: (1615, 1294)}
PREFIX = "menusync-demo"
CONFLICT_PATH = "/v1/partner/menus/modifiers/9003/visibilities"
#: The store that opens at the end of the demo (populated with ``menusync stores populate``).
NEW_STORE = (5297, 8888)
CONFLICT_TARGET = ("5297:1293", "modifier", 9003, "visibilities:6")
#: Channel names for the demo's output (klikit's provider ids).
CHANNELS = {1: "klikit", 6: "GrabFood", 9: "GoFood", 11: "ShopeeFood"}

MAPPINGS_CSV = """kind,source,pos_id,business_id,level,entity_id,brand_id,branch_id
# Square catalog item variations and locations
entity,square,SQ-CLASSIC-BURGER,398,item,101,,
entity,square,SQ-FRIES,398,item,102,,
entity,square,SQ-CHOC-SHAKE,398,item,103,,
entity,square,SQ-CAESAR,398,item,104,,
location,square,SQ-LOC-CENTRAL,398,,,5297,1293
location,square,SQ-LOC-NORTH,398,,,5297,5913
# Shopify inventory items and the mall kiosk
entity,shopify,808950810,398,item,105,,
entity,shopify,808950811,398,item,106,,
location,shopify,655441491,398,,,1615,1294
# Kitchen inventory system: SKUs and kitchen names
entity,sku,KIT-BEEF-PATTY,398,item,107,,
entity,sku,KIT-FISH-FILLET,398,item,108,,
location,inventory,KITCHEN-NORTH,398,,,5297,5913
"""

#: Demo timings: a short publish quiet period so that the demo settles in seconds.
DEMO_SETTINGS: dict[str, Any] = {
    "flush_window_ms": 100,
    "publish_quiet_ms": 1500,
    "publish_max_wait_ms": 15000,
    "retry_min_backoff_ms": 100,
    "retry_max_backoff_ms": 1500,
    "breaker_threshold": 20,
    "breaker_open_ms": 500,
    "sweep_interval_s": 1.0,
    "sweep_stale_after_s": 5.0,
    # The periodic read-back every few seconds, so that the demo's tampering is found quickly.
    "reconcile_interval_s": 4.0,
    "log_level": "INFO",
}

Key = tuple[str, str, int, str]  # (store key or "*", level, entity id, field or "visibilities:<provider>")


def channel(provider: int) -> str:
    return f"{CHANNELS.get(provider, 'provider')} ({provider})"


@dataclass
class Expectation:
    """The newest desired value per target, from the events as sent (the test oracle)."""

    values: dict[Key, tuple[int, Any]] = field(default_factory=dict)

    def add(self, key: Key, value: Any, at_ms: int) -> None:
        current = self.values.get(key)
        if current is None or at_ms > current[0]:
            self.values[key] = (at_ms, value)


@dataclass
class Tally:
    sent: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, source: str, outcome: str) -> None:
        self.sent[source] = self.sent.get(source, 0) + 1
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


class Demo:
    def __init__(self, console: Console, workdir: Path, fault_rate: float) -> None:
        self.console = console
        self.workdir = workdir
        self.fault_rate = fault_rate
        self.logs = workdir / "logs"
        self.processes: list[ServiceProcess] = []
        self.redis_server: EmbeddedRedis | None = None
        self.sandbox: SandboxProcess | None = None
        self.expect = Expectation()
        self.tally = Tally()
        # "11:30" two hours ago: every event of the demo (up to 13:31) lies in the past, as real events do.
        self.base_ms = int(time.time() * 1000) - 2 * 3600_000
        self.secrets = {
            "api_tokens": "demo-" + uuid.uuid4().hex,
            "square_signature_keys": uuid.uuid4().hex,
            "shopify_webhook_secrets": uuid.uuid4().hex,
            "standard_webhook_secrets": "whsec_" + uuid.uuid4().hex,
        }
        self.env: dict[str, str] = {}
        self.web_url = ""
        self.http: httpx.Client | None = None
        self.r: Any = None
        self.keys = Keys(PREFIX)
        self.starting_maps: dict[tuple[str, int], dict[str, bool]] = {}
        self.metrics_port = 0

    # -- stack -----------------------------------------------------------------------------------

    def start(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.logs.mkdir(parents=True)
        with self.console.status("starting the stack: redis, sandbox, web, worker, scheduler, inventory"):
            self.redis_server = EmbeddedRedis.start(data_dir=self.workdir / "redis")
            self.sandbox = SandboxProcess().start()
            credentials = write_credentials(
                self.workdir / "credentials.toml",
                {BUSINESS: self.sandbox.credentials(BUSINESS)},
                provider_ids=[1, 6],
            )
            web_port = free_port()
            self.metrics_port = free_port()
            self.web_url = f"http://127.0.0.1:{web_port}"
            settings = dict(DEMO_SETTINGS)
            settings.update(self.secrets)
            settings["square_notification_url"] = f"{self.web_url}/webhooks/square"
            self.env = stack_env(
                redis_url=self.redis_server.url,
                prefix=PREFIX,
                klikit_url=self.sandbox.url,
                credentials_file=credentials,
                **settings,
            )
            prom = self.workdir / "prometheus"
            prom.mkdir()
            worker_env = dict(self.env)
            worker_env.update(
                {
                    "PROMETHEUS_MULTIPROC_DIR": str(prom),
                    "dramatiq_prom_db": str(prom),
                    "dramatiq_prom_host": "127.0.0.1",
                    "dramatiq_prom_port": str(self.metrics_port),
                }
            )
            commands: list[tuple[str, list[str], dict[str, str]]] = [
                ("web", [*WEB_ARGV, "--port", str(web_port)], self.env),
                ("worker", WORKER_ARGV, worker_env),
                ("scheduler", SCHEDULER_ARGV, self.env),
                ("inventory", INVENTORY_ARGV, self.env),
            ]
            for name, argv, env in commands:
                self.processes.append(ServiceProcess(argv, env, log_path=self.logs / f"{name}.log").start())
            self.http = httpx.Client(timeout=10.0)
            self.r = connect(self.redis_server.url)
            self.processes[0].wait_until(self._web_ready, timeout=30)
            self._cli("mappings", "import", str(self._mapping_file()))
        self.console.print(
            f"[green]stack up[/green]: web {self.web_url}, sandbox {self.sandbox.url}, redis {self.redis_server.url} "
            f"(prefix {PREFIX}), logs in {self.logs.relative_to(ROOT) if self.logs.is_relative_to(ROOT) else self.logs}"
        )

    def _web_ready(self) -> bool:
        assert self.http is not None
        try:
            return self.http.get(f"{self.web_url}/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def _mapping_file(self) -> Path:
        path = self.workdir / "mappings.csv"
        path.write_text(MAPPINGS_CSV)
        return path

    def _cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "cli.app", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode not in (0,):
            raise RuntimeError(f"menusync {' '.join(args[:2])} failed ({result.returncode}): {result.stdout[-500:]}")
        return result

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.terminate(timeout=15)
        if self.http is not None:
            self.http.close()
        if self.sandbox is not None:
            self.sandbox.stop()
        if self.redis_server is not None:
            self.redis_server.stop()

    # -- senders ---------------------------------------------------------------------------------

    def _post(self, source: str, path: str, body: bytes, headers: dict[str, str], what: str) -> dict[str, Any]:
        assert self.http is not None
        response = self.http.post(f"{self.web_url}{path}", content=body, headers=headers)
        data: dict[str, Any] = response.json() if response.content else {}
        if data.get("duplicate"):
            outcome = "duplicate"
        elif response.status_code == 202:
            outcome = "superseded" if data.get("superseded") and not data.get("accepted") else "accepted"
        else:
            outcome = f"http {response.status_code}"
        self.tally.count(source, outcome)
        colour = {"accepted": "green", "duplicate": "yellow", "superseded": "yellow"}.get(outcome, "red")
        detail = {k: v for k, v in data.items() if k in ("accepted", "superseded", "unmapped")}
        self.console.print(
            f"  {source:<9} {what:<58} [{colour}]{response.status_code} {outcome}[/{colour}] {detail or ''}"
        )
        if response.status_code >= 300 and response.status_code != 200:
            raise RuntimeError(f"{source} delivery refused: {response.status_code} {data}")
        return data

    def square(self, event_id: str, item: str, location: str, quantity: int, at_s: int, what: str) -> None:
        at_ms = self.base_ms + at_s * 1000
        body = json.dumps(
            {
                "merchant_id": "ML8M1AQ1GQG2K",
                "type": "inventory.count.updated",
                "event_id": event_id,
                "created_at": iso(at_ms + 150),
                "data": {
                    "type": "inventory_counts",
                    "id": f"counts-{event_id}",
                    "object": {
                        "inventory_counts": [
                            {
                                "calculated_at": iso(at_ms),
                                "catalog_object_id": item,
                                "catalog_object_type": "ITEM_VARIATION",
                                "location_id": location,
                                "quantity": str(quantity),
                                "state": "IN_STOCK",
                            }
                        ]
                    },
                },
            }
        ).encode()
        signature = sign_square(body, f"{self.web_url}/webhooks/square", self.secrets["square_signature_keys"])
        headers = {"content-type": "application/json", "x-square-hmacsha256-signature": signature}
        self._post("square", "/webhooks/square", body, headers, what)

    def shopify(self, event_id: str, item: int, location: int, available: int, at_s: int, what: str) -> None:
        at_ms = self.base_ms + at_s * 1000
        body = json.dumps(
            {
                "inventory_item_id": item,
                "location_id": location,
                "available": available,
                "updated_at": iso(at_ms),
                "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{location}?inventory_item_id={item}",
            }
        ).encode()
        headers = {
            "content-type": "application/json",
            "x-shopify-hmac-sha256": sign_shopify(body, self.secrets["shopify_webhook_secrets"]),
            "x-shopify-topic": "inventory_levels/update",
            "x-shopify-event-id": event_id,
            "x-shopify-shop-domain": "demo-kitchen.myshopify.com",
        }
        self._post("shopify", "/webhooks/shopify", body, headers, what)

    def standard(self, event_id: str, batch: dict[str, Any], what: str) -> None:
        body = json.dumps(batch).encode()
        ts = int(time.time())
        signature = sign_standard(body, event_id, ts, self.secrets["standard_webhook_secrets"])
        headers = {
            "content-type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": signature,
        }
        self._post("standard", "/webhooks/standard", body, headers, what)

    def api(self, batch: dict[str, Any], what: str) -> None:
        headers = {"content-type": "application/json", "authorization": f"Bearer {self.secrets['api_tokens']}"}
        self._post("api", "/v1/changes", json.dumps(batch).encode(), headers, what)

    def inventory(self, event_id: str, sku: str, quantity: int, at_s: int, what: str, **store: Any) -> None:
        fields: dict[str, Any] = {
            "sku": sku,
            "quantity": str(quantity),
            "ts": str(self.base_ms + at_s * 1000),
            "event_id": event_id,
            "business_id": str(BUSINESS),
        }
        fields.update({k: str(v) for k, v in store.items()})
        entry = self.r.xadd(self.keys("stream", "inventory"), fields)
        self.tally.count("inventory", "streamed")
        self.console.print(f"  {'inventory':<9} {what:<58} [green]XADD {entry}[/green]")

    # -- the lunch service -----------------------------------------------------------------------

    def change(
        self, cid: str, kind: str, level: str, ids: list[int], at_s: int, stores: list[str], **value: Any
    ) -> dict[str, Any]:
        at_ms = self.base_ms + at_s * 1000
        field_name = {"availability": "enabled", "visibility": "visibilities", "schedule": "available_times"}[kind]
        for entity in ids:
            for store in stores or ["*"]:
                if kind != "visibility":
                    self.expect.add((store, level, entity, field_name), value[field_name], at_ms)
                    continue
                # Per channel: the named ones as asked, every other one as it was before the service.
                for provider, visible in self.starting_map(level, entity).items():
                    self.expect.add((store, level, entity, f"visibilities:{provider}"), visible, -1)
                for provider, visible in value[field_name].items():
                    self.expect.add((store, level, entity, f"visibilities:{provider}"), visible, at_ms)
        body: dict[str, Any] = {
            "id": cid,
            "kind": kind,
            "level": level,
            "entity_ids": ids,
            "occurred_at": iso(at_ms),
            **value,
        }
        if stores:
            body["stores"] = [{"brand_id": STORES[s][0], "branch_id": STORES[s][1]} for s in stores]
        return {"business_id": BUSINESS, "changes": [body]}

    def starting_map(self, level: str, entity: int) -> dict[str, bool]:
        """What klikit shows for the entity before the service (the business map; no store overrides yet)."""
        key = (level, entity)
        if key not in self.starting_maps:
            assert self.sandbox is not None
            business = self.sandbox.state(BUSINESS)["business"]
            self.starting_maps[key] = dict(business[level][str(entity)]["visibilities"])
        return self.starting_maps[key]

    def stock(self, store: str, item: int, quantity: int, at_s: int) -> None:
        self.expect.add((store, "item", item, "enabled"), quantity > 0, self.base_ms + at_s * 1000)

    def service(self) -> None:
        assert self.sandbox is not None
        c = self.console
        lunch = {str(d): {"disabled": False, "slots": [{"startTime": 1100, "endTime": 1500}]} for d in range(7)}
        c.rule("11:30 before service: schedule and channel visibility")
        self.standard(
            "msg_sched_lunch_1",
            self.change("sched-lunch-1", "schedule", "section", [6826], 0, [], available_times=lunch),
            "schedule: lunch section 6826 runs 11:00-15:00, every store",
        )
        self.api(
            self.change("vis-112-1", "visibility", "item", [112], 5, [CENTRAL, NORTH], visibilities={"6": False}),
            "hide item 112 on GrabFood at central, north (only there)",
        )
        c.rule(f"12:00 the rush: the sandbox now answers {self.fault_rate:.0%} of writes with 502")
        self.sandbox.set_faults(downstream_rate=self.fault_rate, writes_only=True, seed=1)
        self.sandbox.script(
            "PATCH",
            CONFLICT_PATH,
            [{"status": 409, "code": "state_idempotency_conflict", "message": "key reused with a different body"}],
            business_id=BUSINESS,
        )
        self.stock(CENTRAL, 101, 0, 60)
        self.square("sq-evt-0001", "SQ-CLASSIC-BURGER", "SQ-LOC-CENTRAL", 0, 60, "stock-out: classic burger, central")
        self.square("sq-evt-0001", "SQ-CLASSIC-BURGER", "SQ-LOC-CENTRAL", 0, 60, "same delivery again (Square retry)")
        self.stock(NORTH, 102, 0, 75)
        self.square("sq-evt-0002", "SQ-FRIES", "SQ-LOC-NORTH", 0, 75, "stock-out: fries, north")
        self.stock(MALL, 105, 0, 90)
        self.shopify("shp-evt-1001", 808950810, 655441491, 0, 90, "stock-out: item 105, mall kiosk")
        self.stock(NORTH, 107, 0, 100)
        self.inventory(
            "inv-2001", "KIT-BEEF-PATTY", 0, 100, "stock-out: beef patties, kitchen north", location="KITCHEN-NORTH"
        )
        self.api(
            self.change("vis-mod-9003", "visibility", "modifier", [9003], 110, [CENTRAL], visibilities={"6": False}),
            "hide modifier 9003 on GrabFood at central",
        )
        self.api(
            self.change("vis-112-2", "visibility", "item", [112], 115, [CENTRAL], visibilities={"11": False}),
            "also hide item 112 on ShopeeFood at central",
        )
        self.stock(CENTRAL, 103, 0, 120)
        self.square("sq-evt-0003", "SQ-CHOC-SHAKE", "SQ-LOC-CENTRAL", 0, 120, "stock-out: chocolate shake, central")
        self.stock(CENTRAL, 108, 0, 130)
        self.inventory(
            "inv-2002", "KIT-FISH-FILLET", 0, 130, "stock-out: fish fillets, central", brand_id=5297, branch_id=1293
        )
        self.inventory(
            "inv-2002",
            "KIT-FISH-FILLET",
            0,
            130,
            "same entry again (duplicate event id)",
            brand_id=5297,
            branch_id=1293,
        )
        # Out of order: the restock (12:06) is delivered before the stock-out it supersedes (12:04).
        self.stock(NORTH, 104, 8, 360)
        self.square("sq-evt-0005", "SQ-CAESAR", "SQ-LOC-NORTH", 8, 360, "restock: caesar, north (12:06, sent first)")
        self.stock(NORTH, 104, 0, 240)
        self.square("sq-evt-0004", "SQ-CAESAR", "SQ-LOC-NORTH", 0, 240, "stock-out: caesar, north (12:04, late)")
        self.stock(MALL, 106, 0, 250)
        self.shopify("shp-evt-1002", 808950811, 655441491, 0, 250, "stock-out: item 106, mall kiosk")
        self.api(
            self.change("sold-out-109", "availability", "item", [109, 110], 270, [CENTRAL, NORTH, MALL], enabled=False),
            "availability: items 109, 110 off everywhere (chef's call)",
        )
        time.sleep(1.0)
        c.rule("13:30 after the rush: 502s stop, restocks arrive")
        self.sandbox.set_faults(downstream_rate=0.0)
        self.stock(CENTRAL, 101, 24, 3600)
        self.square("sq-evt-0006", "SQ-CLASSIC-BURGER", "SQ-LOC-CENTRAL", 24, 3600, "restock: classic burger, central")
        self.stock(MALL, 105, 12, 3610)
        self.shopify("shp-evt-1003", 808950810, 655441491, 12, 3610, "restock: item 105, mall kiosk")
        self.shopify("shp-evt-1003", 808950810, 655441491, 12, 3610, "same delivery again (Shopify retry)")
        self.stock(NORTH, 107, 40, 3620)
        self.inventory(
            "inv-2003", "KIT-BEEF-PATTY", 40, 3620, "restock: beef patties, kitchen north", location="KITCHEN-NORTH"
        )
        self.api(
            self.change("sold-out-110-back", "availability", "item", [110], 3630, [CENTRAL, NORTH, MALL], enabled=True),
            "availability: item 110 back everywhere",
        )

    # -- settling and checking -------------------------------------------------------------------

    def settled(self) -> bool:
        r, k = self.r, self.keys
        stream = k("stream", "inventory")
        try:
            groups = r.xinfo_groups(stream)
            last_id = r.xinfo_stream(stream)["last-generated-id"]
        except redis.ResponseError:
            return False
        consumed = bool(groups) and all(g["pending"] == 0 and g["last-delivered-id"] == last_id for g in groups)
        return (
            consumed
            and r.zcard(k.business(BUSINESS, "pending")) == 0
            and not r.exists(k.business(BUSINESS, "publish"))
            and not r.exists(k.business(BUSINESS, "lease"))
            and not r.exists(k.business(BUSINESS, "flush", "scheduled"))
        )

    def wait_settled(self, timeout_s: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout_s
        with self.console.status("waiting for the pipeline to settle") as status:
            while time.monotonic() < deadline:
                if self.settled():
                    return True
                pending = self.r.zcard(self.keys.business(BUSINESS, "pending"))
                publishing = (
                    "publish pending" if self.r.exists(self.keys.business(BUSINESS, "publish")) else "no publish due"
                )
                calls = len(self.calls())
                status.update(
                    f"waiting for the pipeline to settle: {pending} target(s) pending, {publishing}, "
                    f"{calls} klikit call(s) so far"
                )
                for proc in self.processes:
                    if not proc.alive():
                        raise RuntimeError(f"{proc!r} exited; see {self.logs}")
                time.sleep(0.25)
        return False

    def calls(self) -> list[dict[str, Any]]:
        assert self.sandbox is not None
        return self.sandbox.calls(business_id=BUSINESS)

    def compare(self, skip: set[Key]) -> list[str]:
        """Mismatches between the published menus and the expected final state."""
        assert self.sandbox is not None
        published = self.sandbox.state(BUSINESS)["effective_published"]
        problems: list[str] = []
        for key, (_, value) in sorted(self.expect.values.items(), key=lambda kv: str(kv[0])):
            if key in skip:
                continue
            scope, level, entity, field_name = key
            for store in STORES if scope == "*" else [scope]:
                row = published.get(store, {}).get(level, {}).get(str(entity))
                if row is None:
                    problems.append(f"{level} {entity} at {store}: not published")
                    continue
                if field_name == "enabled":
                    ok, got = row["enabled"] is value, row["enabled"]
                elif field_name.startswith("visibilities:"):
                    # klikit's reading of the published map: a channel missing from it is hidden.
                    provider = int(field_name.split(":", 1)[1])
                    shown = bool(row["visibilities"].get(str(provider), False))
                    if shown is not value:
                        want, have = ("visible", "hidden") if value else ("hidden", "visible")
                        problems.append(
                            f"{level} {entity} at {store}: expected {want} on {channel(provider)}, published {have}"
                        )
                    continue
                else:
                    got = {d: row.get("availableTimes", {}).get(d) for d in value}
                    ok = got == value
                if not ok:
                    problems.append(f"{level} {entity} {field_name} at {store}: expected {value}, published {got}")
        return problems

    def channel_story(self) -> str:
        """Item 112 per store, in words: where it is shown and where hidden, as published."""
        assert self.sandbox is not None
        published = self.sandbox.state(BUSINESS)["effective_published"]
        lines = []
        for name, store in ((CENTRAL, "central"), (NORTH, "north"), (MALL, "mall")):
            row = published.get(name, {}).get("item", {}).get("112")
            if row is None:
                lines.append(f"item 112 at {store}: not published")
                continue
            flags = {int(p): bool(v) for p, v in row["visibilities"].items()}
            shown = [channel(p) for p, v in sorted(flags.items()) if v] or ["no channel"]
            hidden = [channel(p) for p, v in sorted(flags.items()) if not v]
            lines.append(
                f"item 112 at {store}: shown on {', '.join(shown)}"
                + (f"; hidden on {', '.join(hidden)}" if hidden else "")
            )
        return "\n".join(lines)

    def worker_retries(self) -> float | None:
        assert self.http is not None
        try:
            text = self.http.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=3).text
        except httpx.HTTPError:
            return None
        total = 0.0
        for line in text.splitlines():
            if line.startswith("menusync_retries_total{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def dead_letters(self) -> list[dict[str, Any]]:
        ids = self.r.zrevrange(self.keys.group("dlq", "index"), 0, -1)
        raws = self.r.mget([self.keys.group("dlq", "item", i) for i in ids]) if ids else []
        return [json.loads(raw) for raw in raws if raw]

    # -- the whole run ---------------------------------------------------------------------------

    def run(self, keep: bool) -> int:
        c = self.console
        started = time.monotonic()
        self.start()
        self.service()
        if not self.wait_settled():
            c.print("[red]the pipeline did not settle in time[/red]")
            return 1
        dead = self.dead_letters()
        conflicts = [d for d in dead if d["error_code"] == "state_idempotency_conflict"]
        first = self.compare(skip={CONFLICT_TARGET} if conflicts else set())
        first_calls = self.calls()
        replayed = False
        second: list[str] = []
        if conflicts:
            c.rule("operator: replay the conflict under a new key")
            refused = subprocess.run(
                [sys.executable, "-m", "cli.app", "dlq", "replay", conflicts[0]["id"]],
                env=self.env,
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            c.print(f"  $ menusync dlq replay {conflicts[0]['id']}   -> exit {refused.returncode} (needs --new-key)")
            result = self._cli("dlq", "replay", conflicts[0]["id"], "--new-key")
            c.print(f"  $ menusync dlq replay {conflicts[0]['id']} --new-key   -> {result.stdout.strip()}")
            replayed = self.wait_settled()
            second = self.compare(skip=set())
        repaired_s = self.tamper_and_watch()
        operations_ok = self.operations()
        self.summary(first_calls, dead, first, second, replayed, time.monotonic() - started)
        if repaired_s is None:
            c.print("[red]the tampered item was not put back[/red]")
        ok = not first and (not conflicts or (replayed and not second)) and repaired_s is not None and operations_ok
        if keep:
            c.print(
                f"\nthe stack keeps running (Ctrl-C stops it). Try:\n  REDIS_URL={self.env['REDIS_URL']} "
                f"MENUSYNC_PREFIX={PREFIX} .venv/bin/menusync status"
            )
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        return 0 if ok else 1

    def operations(self) -> bool:
        """A new store opens (populated, then published) and the menu gains an item (created once)."""
        assert self.sandbox is not None
        c = self.console
        c.rule("operator: a new store opens, the menu gains a pizza")
        brand, branch = NEW_STORE
        self.sandbox.add_store(BUSINESS, brand, branch)
        store = f"{brand}:{branch}"
        populated = self._cli("stores", "populate", str(BUSINESS), "--store", store, "--sections", "6825,6826")
        c.print(f"  $ menusync stores populate {BUSINESS} --store {store} --sections 6825,6826")
        for line in populated.stdout.strip().splitlines():
            c.print(f"    {line}")
        pizza = ["--title", "en=Margherita", "--price", "1:IDR:50000", "--sku", "DEMO-PIZZA", "--visible", "1,6"]
        created = [
            json.loads(
                self._cli("items", "create", str(BUSINESS), *pizza, "--request-id", "demo-pizza", "--json").stdout
            )
            for _ in range(2)
        ]
        c.print(
            f"  $ menusync items create {BUSINESS} {' '.join(pizza)} --request-id demo-pizza   (twice)\n"
            f"    created item {created[0]['id']} (klikit request_id {created[0]['request_id']}); "
            f"the second run was answered from klikit's idempotency record: item {created[1]['id']}"
        )
        published = False
        with c.status(f"waiting for the publish of store {store}"):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not published:
                published = store in self.sandbox.state(BUSINESS)["published"]
                time.sleep(0.25)
        creates = [
            e
            for e in self.sandbox.calls(business_id=BUSINESS)
            if e["path"].endswith("/menus/items")
            and e["applied"]
            and isinstance(e["body"], dict)
            and e["body"].get("sku") == "DEMO-PIZZA"
        ]
        ok = published and created[0]["id"] == created[1]["id"] and len(creates) == 1
        c.print(
            f"  store {store}: "
            + ("[green]populated and published[/green]" if published else "[red]not published[/red]")
            + f"; pizza created {len(creates)} time(s)"
        )
        return ok

    def tamper_and_watch(self, timeout_s: float = 40.0) -> float | None:
        """Change one published item in klikit behind menusync's back; seconds until menusync put it back."""
        assert self.sandbox is not None
        c = self.console
        key = next(
            (
                k
                for k, (_, v) in sorted(self.expect.values.items(), key=lambda kv: str(kv[0]))
                if k[0] != "*" and k[1] == "item" and k[3] == "enabled" and v is False
            ),
            None,
        )
        if key is None:
            return 0.0
        store, _, item, _ = key
        brand, branch = (int(x) for x in store.split(":"))
        c.rule("someone turns a sold-out item back on in klikit's own tools")
        self.sandbox.tamper(BUSINESS, "item", item, "enabled", True, store=(brand, branch), republish=True)
        c.print(f"  klikit now shows item {item} at {store} [red]on sale[/red]; the kitchen said sold out")
        started = time.monotonic()
        with c.status("waiting for menusync's read-back to find and repair it"):
            while time.monotonic() - started < timeout_s:
                published = self.sandbox.state(BUSINESS)["effective_published"]
                if published.get(store, {}).get("item", {}).get(str(item), {}).get("enabled") is False:
                    elapsed = time.monotonic() - started
                    c.print(
                        f"  menusync's read-back found the drift and put item {item} back to sold out "
                        f"[green]in {elapsed:.1f} s[/green] (written again under a new key, then published)"
                    )
                    return elapsed
                time.sleep(0.25)
        return None

    def summary(
        self,
        calls: list[dict[str, Any]],
        dead: list[dict[str, Any]],
        first: list[str],
        second: list[str],
        replayed: bool,
        elapsed_s: float,
    ) -> None:
        c = self.console
        all_calls = self.calls()
        writes = [x for x in all_calls if x["method"] in ("PATCH", "POST") and not x["path"].endswith("/publish")]
        publishes = [x for x in all_calls if x["path"].endswith("/publish")]
        faults = [x for x in all_calls if x.get("fault") == "downstream"]
        stats = {k: int(v) for k, v in self.r.hgetall(self.keys.business(BUSINESS, "stats")).items()}
        table = Table(title=f"lunch service summary ({elapsed_s:.0f} s)", show_header=False)
        table.add_column("what")
        table.add_column("value")
        sent = ", ".join(f"{src} {n}" for src, n in sorted(self.tally.sent.items()))
        table.add_row("deliveries sent", f"{sum(self.tally.sent.values())} ({sent})")
        table.add_row("delivery outcomes", ", ".join(f"{o} {n}" for o, n in sorted(self.tally.outcomes.items())))
        table.add_row(
            "changes in the ledger",
            f"recorded {stats.get('recorded', 0)}, superseded (older than stored) {stats.get('superseded', 0)}, "
            f"applied {stats.get('applied', 0)}, dead-lettered {stats.get('dead', 0)}",
        )
        by_op: dict[str, int] = {}
        for x in writes:
            op = x["path"].removeprefix("/v1/partner/menus/")
            by_op[op] = by_op.get(op, 0) + 1
        reads = [x for x in all_calls if x["method"] == "GET"]
        table.add_row(
            "klikit calls",
            f"{len(all_calls)} ({len(writes)} writes, {len(publishes)} publish, {len(reads)} reads: the menus "
            "and channel list that visibility maps are composed from)",
        )
        table.add_row("writes by endpoint", ", ".join(f"{op} {n}" for op, n in sorted(by_op.items())))
        ok_publishes = [x for x in publishes if (x["status"] or 0) < 300]
        table.add_row("publishes", f"{len(ok_publishes)} succeeded of {len(publishes)} sent")
        retries = self.worker_retries()
        table.add_row(
            "retries",
            f"{len(faults)} call(s) answered 502 and tried again"
            + (f"; {retries:.0f} flush/publish retr(y/ies) scheduled by the workers" if retries is not None else ""),
        )
        if dead:
            lines = [
                f"{d['id']}: {d['error_code']} (HTTP {d.get('http_status')}) on {d.get('operation') or d.get('actor')}"
                f" {d.get('path') or ''}, {len(d.get('targets') or [])} target(s) — {d.get('reason')}"
                for d in dead
            ]
            table.add_row("dead letters", "\n".join(lines))
        else:
            table.add_row("dead letters", "none")
        table.add_row("channels", self.channel_story())
        verdict = "[green]match[/green]" if not first else f"[red]{len(first)} mismatch(es)[/red]"
        explain = (
            f" (modifier 9003 at {CONFLICT_TARGET[0]} excluded: its write was dead-lettered as an idempotency conflict)"
            if any(d["error_code"] == "state_idempotency_conflict" for d in dead)
            else ""
        )
        table.add_row("published menus vs expected", verdict + explain)
        if any(d["error_code"] == "state_idempotency_conflict" for d in dead):
            after = "[green]match, everything included[/green]" if replayed and not second else "[red]no match[/red]"
            table.add_row("after `dlq replay --new-key`", after)
        c.print(table)
        for line in (first + second)[:20]:
            c.print(f"  [red]{line}[/red]")
        del calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.demo", description="A lunch service through menusync.")
    parser.add_argument("--keep", action="store_true", help="keep the stack running at the end until Ctrl-C")
    parser.add_argument("--fault-rate", type=float, default=0.3, help="share of writes answered 502 during the rush")
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "demo")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 140)
    demo = Demo(console, args.workdir, args.fault_rate)
    try:
        return demo.run(keep=args.keep)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        return 130
    except Exception as exc:
        console.print(f"[red]demo failed: {exc}[/red] (logs in {demo.logs})")
        return 1
    finally:
        with console.status("stopping the stack"):
            demo.stop()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
