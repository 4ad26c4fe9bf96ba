"""CPU per signed Stripe webhook delivery, in process: the API beside the fair ceiling.

A loaded machine makes request rates noisy; the CPU a delivery costs the worker process is not.
Both ASGI apps (``api.app.create_app`` and ``_ceiling_app``) are called directly, in this process,
by a minimal ASGI driver (no sockets, no HTTP parsing: the same for both), with ``--concurrency``
deliveries in flight as wrk would keep them; ``time.process_time()`` (every thread of the
process, the API's thread pool too) is read around each phase and divided by its deliveries.
The events are ``webhook_bench``'s mix (four per pending order: two the shop ignores, a
payment, the paid Checkout Session), then the same events again (duplicates) for the API.

    python bench/webhook_cpu.py [--events 2000] [--rounds 3] [--concurrency 16] [--pg URL]

Prints CPU per delivery (median of the rounds) for each and ceiling / API, the ratio the wrk bench
would approach on a CPU-bound worker (target ≥ 0.3).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402
from _storefront import SECRET, TENANT, warehouse  # noqa: E402
from webhook_bench import TARGET, events, signed  # noqa: E402

WEBHOOK_SECRET = "whsec_bench_cpu"


async def deliver(app: Any, path: str, request: dict[str, Any]) -> tuple[int, bytes]:
    """One POST through ``app`` as an ASGI server would make it; (status, body)."""
    body: bytes = request["content"]
    headers = [(b"host", b"127.0.0.1:8000"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in request["headers"].items()]
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
             "state": {}}
    sent = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # the client is still there (never a disconnect mid-request)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def phase(app: Any, path: str, requests: list[dict[str, Any]], concurrency: int) -> tuple[float, list]:
    """Deliver every request, ``concurrency`` at a time; (CPU seconds of this process, answers)."""
    answers: list = [None] * len(requests)
    todo = iter(range(len(requests)))

    async def worker() -> None:
        for i in todo:
            answers[i] = await deliver(app, path, requests[i])

    gc.collect()
    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.process_time() - started, answers


def check(answers: list, duplicate: bool) -> None:
    """Every delivery answered 200, as a duplicate exactly when ``duplicate``."""
    import orjson

    bad = [(s, b[:200]) for s, b in answers
           if s != 200 or duplicate != (orjson.loads(b).get("outcome") == "duplicate")]
    if bad:
        raise RuntimeError(f"{len(bad)} of {len(answers)} deliveries failed, e.g. {bad[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="deliveries per round (a multiple of 4)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pg", metavar="URL", help="PostgreSQL server URL (a scratch database is made on it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home, warehouse(args.pg) as url:
        os.environ.setdefault("STOREHOUSE_SECRETS_KEY_FILE", f"{home}/secrets.key")
        asyncio.run(run(args, url))


async def run(args: argparse.Namespace, url: str) -> None:
    from api.app import create_app
    from api.settings import ApiSettings
    from resources.warehouse import engine_for
    from warehouse.db import redact
    from warehouse.tenants import add_tenant, set_connection

    with engine_for(url).begin() as conn:
        add_tenant(conn, TENANT, "Bench shop")
        set_connection(conn, TENANT, "stripe", "http://127.0.0.1:9/stripe",
                       {"secret_key": "sk_test_bench", "webhook_secret": WEBHOOK_SECRET})
    api = create_app(ApiSettings(database_url=url, public_url="http://127.0.0.1:8000", secret_key=SECRET,
                                 worker_enabled=False))
    os.environ.update(CEILING_DATABASE_URL=url, CEILING_TENANT=TENANT, CEILING_WEBHOOK_SECRET=WEBHOOK_SECRET)
    ceiling = importlib.import_module("_ceiling_app").app
    endpoint = f"/shops/{TENANT}/webhooks/stripe"

    where = redact(url).split("@")[-1] if args.pg else "SQLite (WAL)"
    print(f"webhook CPU per delivery, in process\n{machine()}\n{where}, "
          f"{args.events} events per round, concurrency {args.concurrency}, {args.rounds} rounds\n")
    # warm-up: imports, caches, the pools' connections, statement compilation
    await phase(ceiling, "/webhook", [signed(e, WEBHOOK_SECRET) for e in events(url, 200)], args.concurrency)
    warm = [signed(e, WEBHOOK_SECRET) for e in events(url, 200)]
    await phase(api, endpoint, warm, args.concurrency)
    await phase(api, endpoint, warm, args.concurrency)
    spent: dict[str, list[float]] = {"ceiling": [], "first": [], "again": []}
    for _ in range(args.rounds):
        cpu, answers = await phase(ceiling, "/webhook", [signed(e, WEBHOOK_SECRET) for e in events(url, args.events)],
                                   args.concurrency)
        check(answers, duplicate=False)
        spent["ceiling"].append(cpu / len(answers))
        requests = [signed(e, WEBHOOK_SECRET) for e in events(url, args.events)]
        cpu, answers = await phase(api, endpoint, requests, args.concurrency)
        check(answers, duplicate=False)
        spent["first"].append(cpu / len(answers))
        cpu, answers = await phase(api, endpoint, requests, args.concurrency)
        check(answers, duplicate=True)
        spent["again"].append(cpu / len(answers))

    def line(name: str, key: str) -> str:
        values = spent[key]
        return (f"{name:<34} {statistics.median(values) * 1e3:6.3f} ms CPU/delivery   "
                f"(rounds {' '.join(f'{v * 1e3:.3f}' for v in values)})")

    print(line("ceiling: verify, insert, update", "ceiling"))
    print(line("API: signed events, first delivery", "first"))
    print(line("API: same events again (duplicates)", "again"))
    ratio = statistics.median(spent["ceiling"]) / statistics.median(spent["first"])
    print(f"\nceiling CPU / API CPU = {ratio:.2f}  (target ≥ {TARGET})")


if __name__ == "__main__":
    main()
