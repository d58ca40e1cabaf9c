"""Running ``wrk`` (Debian's, a real HTTP load generator in C) and reading its report.

:func:`run_wrk` writes a Lua script that cycles through pre-built requests (so that signed
webhooks can carry a signature of their own: wrk's Lua has no HMAC), runs ``wrk --latency`` and
answers the parsed report; :func:`parse_report` is pure.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

Request = tuple[str, bytes, dict[str, str]]

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def wrk_missing_reason() -> str | None:
    """Why wrk cannot run here (``None``: it can)."""
    if shutil.which("wrk") is None:
        return "wrk is not installed (make bench installs Debian's where apt-get is usable)"
    return None


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_report(text: str) -> dict[str, Any]:
    """Requests/s, request count, latency percentiles (ms) and non-2xx count of a ``wrk --latency`` run."""
    out: dict[str, Any] = {}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        out["per_s"] = float(m.group(1))
    if m := re.search(r"(\d+) requests in ([\d.]+\w+)", text):
        out["requests"] = int(m.group(1))
        out["duration_ms"] = _duration_ms(m.group(2))
    for pct, value in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+\w+)\s*$", text, flags=re.M):
        out[f"p{pct}_ms"] = round(_duration_ms(value), 3)
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    return out


def lua_string(data: bytes) -> str:
    """``data`` as a Lua string literal. Escapes are three digits: Lua reads up to three after a
    backslash, so an unpadded ``\\34`` before a digit (``"2026``) would become another byte."""
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\{b:03d}" for b in data) + '"'


def request_script(requests: Sequence[Request], threads: int) -> str:
    """A wrk script sending ``requests``: thread ``t`` of ``threads`` sends ``t``, ``t + threads``, ...,
    so that no request goes twice until the list runs out (then it starts again)."""
    lines = ["local reqs = {}"]
    for path, body, headers in requests:
        hdrs = ", ".join(f"[{lua_string(k.encode())}] = {lua_string(v.encode())}" for k, v in headers.items())
        lines.append(f"reqs[#reqs + 1] = {{{lua_string(path.encode())}, {{{hdrs}}}, {lua_string(body)}}}")
    lines += [
        "local started = 0",
        "function setup(thread)",
        "  thread:set('tid', started)",
        "  started = started + 1",
        "end",
        "local n = 0",
        "request = function()",
        f"  local r = reqs[(tid + n * {threads}) % #reqs + 1]",
        "  n = n + 1",
        "  return wrk.format('POST', r[1], r[2], r[3])",
        "end",
    ]
    return "\n".join(lines) + "\n"


def run_wrk(
    url: str, requests: Sequence[Request], *, threads: int = 2, connections: int = 16, duration_s: float = 10.0
) -> dict[str, Any]:
    """``wrk -t threads -c connections -d duration --latency`` against ``url``, cycling ``requests``.

    ``wrapped`` in the answer says the list ran out (some requests went twice).
    """
    with tempfile.TemporaryDirectory(prefix="menusync-wrk-") as tmp:
        script = Path(tmp) / "requests.lua"
        script.write_text(request_script(requests, threads))
        argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration_s:g}s", "--latency"]
        done = subprocess.run(
            [*argv, "-s", str(script), url], capture_output=True, text=True, timeout=duration_s + 120, check=True
        )
    report = parse_report(done.stdout)
    report["offered_requests"] = len(requests)
    report["wrapped"] = report.get("requests", 0) > len(requests)
    return report
