"""``menusync change`` and ``menusync mappings`` through the real command line app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import typer
from producer_helpers import BUSINESS, MAPPING_CSV, STORE
from typer.testing import CliRunner

from cli import change as cli_change
from cli import mappings as cli_mappings
from cli.app import app
from config.redis import Keys
from devstack.sandbox.providers import PROVIDERS
from producers.mapping import EntityRef, Mappings
from producers.review import queue_review
from producers.timers import Timers
from workers.changes import Store, Target
from workers.ledger import Ledger
from workers.providers import ProviderDirectory

runner = CliRunner()


def t(entity: int, store: tuple[int, int] | None = STORE, field: str = "enabled") -> Target:
    return Target(
        business_id=BUSINESS,
        store=Store(brand_id=store[0], branch_id=store[1]) if store else None,
        level="item",
        entity_id=entity,
        field=field,  # type: ignore[arg-type]
    )


def test_change_disable_two_items_at_two_stores(r: redis.Redis, ledger: Ledger) -> None:
    result = runner.invoke(
        app,
        [
            "change",
            "--business",
            str(BUSINESS),
            "--level",
            "item",
            "--ids",
            "101,102",
            "--disable",
            "--store",
            "5297:1293",
            "--store",
            "5297:1294",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "4 target(s) recorded" in result.output
    for entity in (101, 102):
        for store in (STORE, (5297, 1294)):
            assert ledger.desired(t(entity, store))[0] is False  # type: ignore[index]


def test_change_visibility_business_level(r: redis.Redis, keys: Keys, ledger: Ledger) -> None:
    ProviderDirectory(r, keys, lambda business: PROVIDERS).listed(BUSINESS)  # klikit's list, cached
    result = runner.invoke(
        app, ["change", "-b", str(BUSINESS), "--level", "item", "--ids", "101", "--visibility", "1=true,6=false"]
    )
    assert result.exit_code == 0, result.output
    for provider, visible in ((1, True), (6, False)):
        target = t(101, None, "visibilities").model_copy(update={"provider": provider})
        assert ledger.desired(target)[0] is visible  # type: ignore[index]


#: A re-enable time within MENUSYNC_MAX_UNTIL_DAYS of now, on a whole hour.
UNTIL = (datetime.now(UTC) + timedelta(days=30)).replace(minute=0, second=0, microsecond=0)


def test_change_until_schedules_reenable(r: redis.Redis, keys: Keys) -> None:
    result = runner.invoke(
        app,
        [
            "change",
            "-b",
            str(BUSINESS),
            "--level",
            "item",
            "--ids",
            "101",
            "--disable",
            "--store",
            "5297:1293",
            "--until",
            UNTIL.isoformat().replace("+00:00", "Z"),
            "--id",
            "ops-1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"re-enable scheduled at {UNTIL.isoformat()}" in result.output
    assert Timers(r, keys).next_due_ms() == int(UNTIL.timestamp() * 1000)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ids", "101"], "exactly one of"),
        (["--ids", "101", "--disable", "--visibility", "1=true"], "exactly one of"),
        (["--ids", "101", "--disable", "--hide-on", "6"], "exactly one of"),
        (["--ids", "101", "--hide-on", "grab"], "is not a provider id"),
        (["--ids", "1x", "--disable"], "is not an integer id"),
        (["--ids", "101", "--visibility", "grab=yes"], "is not PROVIDER=true|false"),
        (["--ids", "101", "--disable", "--store", "5297"], "is not BRAND:BRANCH"),
        (["--ids", "101", "--disable", "--until", "tonight"], "is not an ISO 8601 time"),
        (["--ids", "101", "--disable", "--until", "2099-01-01T00:00:00Z", "--for-today"], "not both"),
        (["--ids", "101", "--disable", "--until", "2099-01-01T00:00:00"], "give a zone"),
        (["--ids", "101", "--schedule", "{bad"], "not JSON"),
    ],
)
def test_change_rejects_bad_input(r: redis.Redis, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["change", "-b", str(BUSINESS), "--level", "item", *args])
    assert result.exit_code != 0
    assert message in " ".join(result.output.split())


def test_change_schema_errors_name_the_field(r: redis.Redis) -> None:
    result = runner.invoke(app, ["change", "-b", str(BUSINESS), "--level", "modifier_group", "--ids", "5", "--disable"])
    assert result.exit_code != 0
    assert "changes[0]" in result.output


def test_for_today_is_next_local_midnight() -> None:
    now = datetime(2026, 11, 21, 10, 30, tzinfo=UTC)
    assert cli_change.next_midnight(now, "Asia/Jakarta") == datetime(2026, 11, 21, 17, 0, tzinfo=UTC)
    assert cli_change.next_midnight(now, "UTC") == datetime(2026, 11, 22, tzinfo=UTC)
    with pytest.raises(typer.BadParameter):
        cli_change.next_midnight(now, "Mars/Olympus")
    changes = cli_change.build_changes(
        business=BUSINESS,
        level="item",
        ids="101",
        enable=False,
        visibility=None,
        schedule=None,
        stores=[],
        until=None,
        for_today=True,
        tz="Asia/Jakarta",
        change_id="x",
        at=None,
        now=now,
    )
    assert changes[0].until_ms == int(datetime(2026, 11, 21, 17, tzinfo=UTC).timestamp() * 1000)
    assert changes[0].occurred_at_ms == int(now.timestamp() * 1000)


def test_schedule_change(r: redis.Redis, ledger: Ledger) -> None:
    result = runner.invoke(
        app,
        [
            "change",
            "-b",
            str(BUSINESS),
            "--level",
            "section",
            "--ids",
            "3",
            "--schedule",
            '{"0": {"slots": [{"startTime": 700, "endTime": 1030}]}}',
        ],
    )
    assert result.exit_code == 0, result.output
    target = Target(business_id=BUSINESS, store=None, level="section", entity_id=3, field="available_times")
    assert ledger.desired(target)[0]["0"]["slots"] == [{"startTime": 700, "endTime": 1030}]  # type: ignore[index]


def test_mappings_import_good_and_bad(r: redis.Redis, keys: Keys, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(MAPPING_CSV)
    result = runner.invoke(app, ["mappings", "import", str(good)])
    assert result.exit_code == 0, result.output
    assert "imported 6 row(s)" in result.output
    assert Mappings(r, keys).entities("shopify", "808950810") == [EntityRef(BUSINESS, "item", 102)]
    bad = tmp_path / "bad.csv"
    bad.write_text("kind,source,pos_id,business_id,level,entity_id,brand_id,branch_id\nentity,square,V9,398,dish,1,,\n")
    result = runner.invoke(app, ["mappings", "import", str(bad)])
    assert result.exit_code == 2
    assert "line 2: level 'dish'" in result.output
    assert Mappings(r, keys).entities("square", "V9") == []
    result = runner.invoke(app, ["mappings", "list"])
    assert result.exit_code == 0 and "808950810" in result.output


def test_mappings_sync_builds_the_sku_index(r: redis.Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    menu = {"menu": {"sections": [{"id": 3, "categories": [{"id": 7, "items": [{"id": 101, "sku": "BURGER"}]}]}]}}
    calls: list[int] = []

    def fake_fetch(business: int) -> Any:
        calls.append(business)
        return menu

    monkeypatch.setattr(cli_mappings, "fetch_menu", fake_fetch)
    result = runner.invoke(app, ["mappings", "sync", str(BUSINESS)])
    assert result.exit_code == 0, result.output
    assert calls == [BUSINESS] and "1 SKU(s) indexed" in result.output
    assert Mappings(r, keys).sku_entities(["BURGER"], [BUSINESS]) == {
        ("BURGER", BUSINESS): [EntityRef(BUSINESS, "item", 101)]
    }


def test_mappings_sync_reports_a_failing_read(r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(business: int) -> Any:
        raise RuntimeError("no credentials for business 398")

    monkeypatch.setattr(cli_mappings, "fetch_menu", boom)
    result = runner.invoke(app, ["mappings", "sync", str(BUSINESS)])
    assert result.exit_code == 1 and "could not read the menu" in result.output


def test_unmapped_list_and_show(r: redis.Redis, keys: Keys) -> None:
    queue_review(
        r, keys, kind="unmapped", source="square", event_id="evt-7", reason="item X has no mapping", raw=b'{"a":1}'
    )
    queue_review(r, keys, kind="invalid", source="inventory", event_id="bad-entry", reason="bad", raw="q=x")
    result = runner.invoke(app, ["mappings", "unmapped", "--kind", "unmapped"])
    assert result.exit_code == 0 and "evt-7" in result.output and "bad-entry" not in result.output
    entry_id = r.xrange(keys("review"))[0][0]  # type: ignore[index]
    result = runner.invoke(app, ["mappings", "show-unmapped", str(entry_id)])
    assert result.exit_code == 0 and '{"a":1}' in result.output
    assert runner.invoke(app, ["mappings", "show-unmapped", "0-1"]).exit_code == 1
