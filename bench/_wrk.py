"""A load generator that is not the bottleneck: ``wrk`` (C, epoll) replaying prepared requests.

The asyncio/httpx driver in ``_storefront.drive`` saturates one core at a few hundred requests per
second, so against a bare FastAPI endpoint it measures itself: the "ceiling" it reports is its
own. ``wrk`` drives the same endpoints at thousands per second on a fraction of a core. Every
request is prepared in Python (distinct Idempotency-Keys, distinct signed events) and written to
a file that a small Lua script replays in order, one connection per unit of concurrency, for a
fixed time (wrk cannot stop on a count); prepare more requests than that time can take, and
``drive_wrk`` refuses a run that needed more. Status codes are checked by wrk (non-2xx are
counted as failures); what the bodies say is checked by the caller afterwards.

Debian/Ubuntu: ``apt-get install wrk``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from typing import Any
from urllib.parse import urlencode

from _storefront import Load

LUA = r"""
local requests, count = {}, 0
function init(args)
  local file = assert(io.open(args[1], "rb"))
  local data = file:read("*a")
  file:close()
  local at = 1
  while at <= #data do
    local header_end = data:find("\n", at, true)
    local meta = data:sub(at, header_end - 1)
    local headers, length = {}, tonumber(meta:match("^(%d+)"))
    for name, value in meta:gmatch("\t([^\t:]+): ([^\t]*)") do headers[name] = value end
    local body = data:sub(header_end + 1, header_end + length)
    count = count + 1
    requests[count] = wrk.format("POST", nil, headers, body)
    at = header_end + length + 1
  end
  index = 0
end
function request()
  index = index % count + 1
  return requests[index]
end
"""
LATENCY = re.compile(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$")
UNIT_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def available() -> bool:
    return shutil.which("wrk") is not None


def _encode(request: dict[str, Any]) -> bytes:
    headers = dict(request.get("headers") or {})
    if "json" in request:
        body = json.dumps(request["json"]).encode()
        headers.setdefault("Content-Type", "application/json")
    elif "data" in request:  # a form, as Stripe's API takes it
        body = urlencode(request["data"]).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    else:
        body = request["content"]
    meta = "".join(f"\t{name}: {value}" for name, value in headers.items())
    return f"{len(body)}{meta}\n".encode() + body


def drive_wrk(url: str, requests: list[dict[str, Any]], concurrency: int, seconds: float = 5.0,
              repeat: bool = False) -> Load:
    """POST ``requests`` (as ``_storefront.drive`` takes them) in order through wrk for ``seconds``
    with ``concurrency`` open connections; unless ``repeat``, what was sent must not run past
    the prepared list (that would send some twice)."""
    with tempfile.TemporaryDirectory(prefix="storehouse-wrk-") as tmp:
        script, data = os.path.join(tmp, "replay.lua"), os.path.join(tmp, "requests.bin")
        with open(script, "w") as handle:
            handle.write(LUA)
        with open(data, "wb") as handle:
            for request in requests:
                handle.write(_encode(request))
        out = subprocess.run(
            ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "30s", "--latency", "-s", script,
             url, "--", data],
            capture_output=True, text=True, check=True).stdout
    summary = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", out)
    done, seconds = int(summary[1]), float(summary[2]) * UNIT_S[summary[3]]
    if done > len(requests) and not repeat:
        raise RuntimeError(f"wrk sent {done} requests but only {len(requests)} were prepared: prepare more")
    failed = int(m[1]) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    percentiles = {int(m[1]): float(m[2]) * UNIT_S[m[3]] for line in out.splitlines() if (m := LATENCY.match(line))}
    return Load(done - failed, failed, seconds, [], percentiles=percentiles)
