"""Studio document creation on PostgreSQL, two API workers, 16 concurrent clients: quotes/s with
gapless numbering (``POST /studios/{tenant}/quotes``) beside the same creation without numbering
(``bench/_studio_app.py``'s bench-only route: same authorisation, validation, reads and inserts),
in the same run, same workers and clients (target ≥ 0.5×); then the numbered quotes' numbers are
checked: duplicates and missing numbers (both must be 0).

Each client is a thread with its own keep-alive connection, creating a two-line quote at a time.
The two modes alternate in rounds on two studios (the numbered and the bare one) and the medians
are compared.

    python bench/studio_numbers_bench.py                        # a scratch database on the default server
    python bench/studio_numbers_bench.py --pg postgresql://…/postgres --seconds 5 --rounds 3
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_PG, ROOT, free_port, load_avg, machine, median, scratch_pg, stop  # noqa: E402

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from warehouse.db import make_engine  # noqa: E402
from warehouse.migrate import upgrade  # noqa: E402

NUMBERED, BARE = "bench-studio", "bench-studio-bare"
BODY_ITEMS = [{"description": "PLA print, 0.2 mm", "quantity": "2", "unit_price": "24.50"},
              {"description": "Sanding", "quantity": "1", "unit_price": "15.00", "discount_percent": "10"}]


def seed(url: str) -> tuple[str, dict[str, int]]:
    """Both studios, a client in each, and an owner of both with an API key; (key, studio -> client id)."""
    from people.credentials import Passwords
    from people.users import create_key, create_user, grant
    from studio.activity import Actor
    from studio.business import save_business
    from studio.clients import create_client
    from studio.db import writing
    from warehouse.tenants import add_tenant

    engine = make_engine(url)
    clients = {}
    with engine.begin() as conn:
        user = create_user(conn, Passwords(19 * 1024, 2), "owner@bench.test", "Owner", "bench password 123")
        for tenant in (NUMBERED, BARE):
            add_tenant(conn, tenant, "Bench Studio")
            grant(conn, user, tenant, "tenant_owner")
        key = create_key(conn, user, "bench").key
    for tenant in (NUMBERED, BARE):
        with writing(engine) as conn:
            save_business(conn, tenant, Actor("system"), name="Bench Studio", abn="51 824 753 556")
            clients[tenant] = create_client(conn, tenant, Actor("system"), name="Bench Client")["id"]
    engine.dispose()
    return key, clients


@contextlib.contextmanager
def api_workers(url: str, port: int, workers: int):
    env = {**os.environ, "STOREHOUSE_SHOP_DATABASE_URL": url, "STOREHOUSE_SHOP_SECRET_KEY": "bench-secret",
           "STOREHOUSE_SHOP_WORKER_ENABLED": "false", "STOREHOUSE_HOME": os.environ.get("STOREHOUSE_HOME", "/tmp"),
           "STOREHOUSE_SHOP_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "_studio_app:create", "--factory", "--app-dir", "bench",
                             "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
                             "--log-level", "warning", "--no-access-log"], cwd=ROOT, env=env,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=0.5).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.2)
        yield base
    finally:
        stop(proc, 15)


def burst(url: str, key: str, client_id: int, clients: int, seconds: float) -> tuple[float, collections.Counter]:
    """``clients`` threads creating quotes for ``seconds``: (created per second, statuses)."""
    statuses: collections.Counter = collections.Counter()
    lock, until = threading.Lock(), time.monotonic() + seconds
    body = {"client_id": client_id, "items": BODY_ITEMS}

    def run() -> int:
        made = 0
        with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {key}"}) as client:
            while time.monotonic() < until:
                status = client.post(url, json=body).status_code
                with lock:
                    statuses[status] += 1
                made += status == 201
        return made

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(clients) as pool:
        made = sum(pool.map(lambda _: run(), range(clients)))
    return made / (time.perf_counter() - t0), statuses


def check_numbers(url: str) -> tuple[int, int, int]:
    """(quotes, duplicate numbers, missing numbers in 1…max) of the numbered studio."""
    engine = make_engine(url)
    with engine.connect() as conn:
        numbers = list(conn.execute(sa.text("SELECT number FROM studio_quotes WHERE tenant_id = :t"),
                                    {"t": NUMBERED}).scalars())
        last = conn.execute(sa.text("SELECT last_number FROM studio_document_numbers WHERE tenant_id = :t "
                                    "AND kind = 'quote'"), {"t": NUMBERED}).scalar_one()
    engine.dispose()
    duplicates = len(numbers) - len(set(numbers))
    missing = len(set(range(1, max(numbers, default=0) + 1)) - set(numbers))
    assert last == max(numbers, default=0), (last, max(numbers))
    return len(numbers), duplicates, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", default=os.environ.get("STOREHOUSE_BENCH_PG", DEFAULT_PG),
                        help="a PostgreSQL server URL; a scratch database is made on it and dropped")
    parser.add_argument("--port", type=int, default=None, help="the API's port (default: a free one)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0, help="per round and mode")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}; load {load_avg()}")
    with scratch_pg(args.pg) as url:
        upgrade(url)
        key, clients = seed(url)
        with api_workers(url, args.port or free_port(), args.workers) as base:
            numbered_url, bare_url = f"{base}/studios/{NUMBERED}/quotes", f"{base}/bench/studios/{BARE}/quotes"
            burst(numbered_url, key, clients[NUMBERED], args.clients, 1.0)  # warm both: connections, caches
            burst(bare_url, key, clients[BARE], args.clients, 1.0)
            numbered, bare, statuses = [], [], collections.Counter()
            for _ in range(args.rounds):
                rate, seen = burst(numbered_url, key, clients[NUMBERED], args.clients, args.seconds)
                numbered.append(rate)
                statuses += seen
                rate, seen = burst(bare_url, key, clients[BARE], args.clients, args.seconds)
                bare.append(rate)
                statuses += seen
        count, duplicates, missing = check_numbers(url)
    ratio = median(numbered) / median(bare)
    print(f"PostgreSQL, {args.workers} API workers, {args.clients} concurrent clients, {args.rounds} rounds × "
          f"{args.seconds:.0f} s per mode")
    print(f"numbered quotes:   {median(numbered):,.1f}/s  (rounds {'/'.join(f'{x:.1f}' for x in numbered)})")
    print(f"without numbering: {median(bare):,.1f}/s  (rounds {'/'.join(f'{x:.1f}' for x in bare)})")
    print(f"→ {ratio:.2f}× of the ceiling (target ≥ 0.5×); answers {dict(sorted(statuses.items()))}")
    print(f"numbered quotes checked: {count:,}; duplicate numbers {duplicates}; missing numbers {missing} "
          f"(both must be 0); load {load_avg()}")
    if duplicates or missing or ratio < 0.5:
        sys.exit(1)


if __name__ == "__main__":
    main()
