"""The benchmark pictures (``python -m bench.plots``; ``make bench`` draws them after the runs).

Reads the results in ``bench/results/*.json`` and writes PNGs beside them:

- ``scale.png``: the sweeper pass and the Redis commands per recorded change against the number
  of businesses (``bench.scale``), log axes;
- ``lunch_rush_latency.png``: the distribution of change -> write, menusync against the naive
  pipeline, in the lunch rush (``bench.lunch_rush``);
- ``fairness.png``: the quiet businesses' change -> write over time while the noisy ones drain
  (``bench.fairness``, and the run before the flush lanes when its result is there).

A picture whose result is missing (or too old to hold what it needs) is skipped with the reason.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{name}.json"
    if not path.exists():
        return None
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server
    import matplotlib.pyplot as plt

    return plt


def plot_scale(out: Path) -> str:
    result = _load("scale")
    raw = (result or {}).get("raw")
    if result is None or not isinstance(raw, dict) or not (raw.get("end_to_end") or raw.get("sweeper")):
        return "skipped: no bench/results/scale.json of this version (python -m bench.scale)"
    e2e = raw.get("end_to_end") or []
    alone = raw.get("sweeper") or []
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    if e2e:
        xs = [r["businesses"] for r in e2e]
        left.plot(xs, [r["sweeper_pass_ms"]["median"] for r in e2e], "o-", label="end to end: scheduler pass, median")
        left.plot(xs, [r["sweeper_pass_ms"]["max"] for r in e2e], "^:", label="end to end: scheduler pass, max")
        right.plot(xs, [r["commands_per_change"] for r in e2e], "o-", label="end to end, every process")
    if alone:
        xs = [r["businesses"] for r in alone]
        left.plot(xs, [r["pass_1pct_due_ms"]["median"] for r in alone], "d-", label="alone: pass, 1 % due")
        left.plot(xs, [r["pass_idle_ms"]["median"] for r in alone], "s-", label="alone: pass, none due")
        scan = [r["full_scan_ms"] for r in alone]
        left.plot(xs, scan, "x--", label="alone: the former full scan")
        right.plot(xs, [r["commands_per_change"] for r in alone], "s-", label="intake alone (record script)")
    left.set(xscale="log", yscale="log", xlabel="businesses", ylabel="sweeper pass (ms)", title="Sweeper pass")
    left.axhline(50, color="grey", lw=0.8, ls=":")
    left.legend(fontsize=7)
    right.set(xscale="log", xlabel="businesses", ylabel="Redis commands per recorded change", title="Cost per change")
    right.set_ylim(bottom=0)
    right.legend(fontsize=8)
    fig.suptitle(
        f"bench.scale, {result.get('finished_at', '')}, load at end {result.get('load_average_at_end')}", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return f"written {out}"


def plot_lunch_rush(out: Path) -> str:
    result = _load("lunch_rush")
    if result is None:
        return "skipped: no bench/results/lunch_rush.json (python -m bench.lunch_rush)"
    raw = result["raw"]
    sides = {side: raw.get(side, {}).get("change_to_write_s", {}).get("histogram") for side in ("menusync", "naive")}
    if not any(sides.values()):
        return "skipped: lunch_rush.json holds no latency histogram (run python -m bench.lunch_rush again)"
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    for side, hist in sides.items():
        if not hist:
            continue
        total = max(1, sum(hist["counts"]))
        ax.step(hist["upper_edges_s"], [c / total for c in hist["counts"]], where="pre", label=side)
    ax.set(xscale="log", xlabel="change -> write (s)", ylabel="share of changes", title="Lunch rush: change -> write")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return f"written {out}"


def plot_fairness(out: Path) -> str:
    runs = {
        label: result
        for label, result in (("flush lanes", _load("fairness")), ("one flush queue", _load("fairness_before")))
        if result is not None and result["raw"].get("together", {}).get("quiet_latency_by_time")
    }
    if not runs:
        return "skipped: no bench/results/fairness.json (python -m bench.fairness)"
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4))
    for label, result in runs.items():
        together = result["raw"]["together"]
        points = together["quiet_latency_by_time"]
        line = ax.plot([t for t, _ in points], [v for _, v in points], ".", ms=4, label=label)[0]
        ax.axvline(together["drain_s"], color=line.get_color(), lw=0.8, ls="--")
    ax.axhline(2.0, color="grey", lw=0.8, ls=":")
    ax.set(
        xlabel="seconds since the noisy burst began (dashed: all noisy work written)",
        ylabel="quiet change -> write (s)",
        title="Quiet businesses while 50 noisy ones drain 2,000 changes each (klikit at 300 ms)",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return f"written {out}"


def main(argv: list[str] | None = None) -> int:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is missing: make bench installs it (pip install -e '.[bench]')", file=sys.stderr)
        return 1
    for name, draw in (
        ("scale.png", plot_scale),
        ("lunch_rush_latency.png", plot_lunch_rush),
        ("fairness.png", plot_fairness),
    ):
        print(f"{name}: {draw(RESULTS_DIR / name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
