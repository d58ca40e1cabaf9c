"""Running ``wrk`` (Debian's, a real HTTP load generator in C) and reading its report.

:func:`run_wrk` writes pre-built requests to a file and a Lua script that cycles through them
(so that signed webhooks can carry a signature of their own: wrk's Lua has no HMAC), optionally
paced to a fixed rate (Debian's wrk has no ``-R``: that is wrk2), runs ``wrk --latency`` and
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


def raw_request(host: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """One HTTP/1.1 POST as wrk sends it (keep-alive), ``Content-Length`` set from ``body``."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def write_requests(path: Path, host: str, requests: Sequence[Request]) -> None:
    """The request file the script reads: per request its byte length on a line, then the bytes.

    The requests are data, not Lua code: a script holding 60,000 literal requests passes LuaJIT's
    limits, fails to load, and wrk then silently sends its default ``GET /`` instead."""
    with path.open("wb") as out:
        for req_path, body, headers in requests:
            raw = raw_request(host, req_path, body, headers)
            out.write(f"{len(raw)}\n".encode() + raw)


#: Rate pacing: each thread sends its ``k``-th request at ``t0 + k / rate_per_thread`` (LuaJIT's ffi
#: reads the monotonic clock), sooner never, at once when already late.
_PACING = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } menusync_timespec;
int clock_gettime(int clk_id, menusync_timespec *tp);
]]
local ts = ffi.new("menusync_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local t0 = nil
local due_k = 0
function delay()
  local now = now_ms()
  if t0 == nil then t0 = now end
  local due = t0 + due_k * 1000 / RATE_PER_THREAD
  due_k = due_k + 1
  if due <= now then return 0 end
  return due - now
end
"""


def request_script(data_file: Path, threads: int, rate: float | None = None) -> str:
    """A wrk script sending the requests of ``data_file``: thread ``t`` of ``threads`` sends ``t``,
    ``t + threads``, ..., so that no request goes twice until the list runs out (then it starts
    again). With ``rate`` (req/s, all threads together) the requests are paced to that rate."""
    lines = [
        "local reqs = {}",
        f"local f = assert(io.open({str(data_file)!r}, 'rb'))",
        "while true do",
        "  local line = f:read('*l')",
        "  if not line then break end",
        "  reqs[#reqs + 1] = f:read(tonumber(line))",
        "end",
        "f:close()",
        "local started = 0",
        "function setup(thread)",
        "  thread:set('tid', started)",
        "  started = started + 1",
        "end",
        "local n = 0",
        "request = function()",
        f"  local r = reqs[(tid + n * {threads}) % #reqs + 1]",
        "  n = n + 1",
        "  return r",
        "end",
    ]
    if rate is not None:
        lines.append(f"RATE_PER_THREAD = {rate / threads!r}")
        lines.append(_PACING)
    return "\n".join(lines) + "\n"


def run_wrk(
    url: str,
    requests: Sequence[Request],
    *,
    threads: int = 2,
    connections: int = 16,
    duration_s: float = 10.0,
    rate: float | None = None,
) -> dict[str, Any]:
    """``wrk -t threads -c connections -d duration --latency`` against ``url``, cycling ``requests``.

    ``wrapped`` in the answer says the list ran out (some requests went twice). With ``rate`` the
    requests are paced (see :data:`_PACING`); wrk then times each request from when it was sent,
    so a server that falls behind shows as ``per_s`` under ``rate``, not in the latencies.
    """
    host = url.split("://", 1)[-1].split("/", 1)[0]
    with tempfile.TemporaryDirectory(prefix="menusync-wrk-") as tmp:
        data = Path(tmp) / "requests.bin"
        write_requests(data, host, requests)
        script = Path(tmp) / "requests.lua"
        script.write_text(request_script(data, threads, rate))
        argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration_s:g}s", "--latency"]
        done = subprocess.run(
            [*argv, "-s", str(script), url], capture_output=True, text=True, timeout=duration_s + 120, check=True
        )
    if done.stderr.strip():
        # wrk reports a script error on stderr and carries on with its default request.
        raise RuntimeError(f"wrk: {done.stderr.strip()[:500]}")
    report = parse_report(done.stdout)
    report["offered_requests"] = len(requests)
    report["wrapped"] = report.get("requests", 0) > len(requests)
    if rate is not None:
        report["offered_per_s"] = rate
    return report
