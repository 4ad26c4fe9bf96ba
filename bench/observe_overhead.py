"""What the observability costs per request and per log line, in-process (no server, no network).

Prints microseconds per call of: the request-id middleware around a do-nothing ASGI app (with a
sane incoming X-Request-ID and without one), the JSON formatter on an app line and on an access
line, and the text formatter for comparison. Run: python -m bench.observe_overhead
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from api.middleware import RequestIdMiddleware
from settings.logs import REQUEST_ID, JsonFormatter

N = 50_000


async def _app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _sink(message):
    pass


async def _receive():
    return {"type": "http.request", "body": b""}


def per_request(app, headers) -> float:
    scope = {"type": "http", "method": "GET", "path": "/healthz", "headers": headers}

    async def loop():
        started = time.perf_counter()
        for _ in range(N):
            await app(dict(scope), _receive, _sink)
        return (time.perf_counter() - started) / N * 1e6

    return asyncio.run(loop())


def per_line(formatter: logging.Formatter, record: logging.LogRecord) -> float:
    started = time.perf_counter()
    for _ in range(N):
        formatter.format(record)
    return (time.perf_counter() - started) / N * 1e6


def main() -> None:
    bare = per_request(_app, [])
    given = per_request(RequestIdMiddleware(_app), [(b"x-request-id", b"lb-4f2a-77")])
    made = per_request(RequestIdMiddleware(_app), [(b"host", b"x")])
    print(f"request-id middleware: +{given - bare:.2f} µs/request with a given id, +{made - bare:.2f} µs made "
          f"(bare app {bare:.2f} µs)")
    REQUEST_ID.set("0123456789abcdef0123456789abcdef")
    app_line = logging.LogRecord("storehouse.commerce.checkout", logging.WARNING, __file__, 1,
                                 "checkout session for %s not created: %s", ("ord_123", "ConnectError"), None)
    access = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/shops/a/catalog", "1.1", 200), None)
    text = logging.Formatter("%(levelname)s:%(name)s:%(message)s")
    print(f"json formatter: {per_line(JsonFormatter(), app_line):.2f} µs/app line, "
          f"{per_line(JsonFormatter(), access):.2f} µs/access line; text formatter {per_line(text, access):.2f} µs")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
