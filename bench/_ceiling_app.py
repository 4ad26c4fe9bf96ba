"""The fair ceilings of issue 15: minimal FastAPI handlers that do the shop API's essential durable
work, and nothing else, on the same database and the same sandbox as the API beside them.

- ``POST /checkout``: one order row inserted (committed), then one Checkout Session created on the
  sandbox's Stripe through the same stripe SDK (its async client over httpx, as a minimal handler
  would have it), then ``201`` with the session's URL.
- ``POST /webhook``: the Stripe signature verified on the raw bytes (the SDK's
  ``WebhookSignature``), the event inserted into ``webhook_events`` and its order updated, in one
  transaction; ``200``.

No validation beyond what the work needs, no idempotency, no tenant lookup, no middleware: a
ceiling, not a competitor. The database is reached through its bare driver on the event loop:
SQLite through ``sqlite3`` in WAL mode as the warehouse opens it, one connection per worker (SQLite
has one writer: a second connection would only queue on its lock); PostgreSQL through psycopg's
``AsyncConnection``, as many per worker as the API's pool holds (``warehouse.db.POOL_SIZE``), so
each worker has as many transactions in flight as the API can have and none waits on another's
round trips.
Configured by environment: ``CEILING_DATABASE_URL`` (a warehouse URL), ``CEILING_TENANT``,
``CEILING_STRIPE_URL``, ``CEILING_STRIPE_KEY``, ``CEILING_WEBHOOK_SECRET``.

    uvicorn _ceiling_app:app   (with bench/ on PYTHONPATH)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import secrets

import stripe
from fastapi import FastAPI, Request, Response
from sqlalchemy.engine import make_url

from warehouse.types import UTCDateTime

app = FastAPI()
TENANT = os.environ.get("CEILING_TENANT", "bench-shop")
_url = make_url(os.environ["CEILING_DATABASE_URL"])
SQLITE = _url.get_backend_name() == "sqlite"
P = "?" if SQLITE else "%s"
_db = None
_stripe: stripe.StripeClient | None = None


def db():
    """This worker's SQLite connection."""
    global _db
    if _db is None:
        import sqlite3

        _db = sqlite3.connect(_url.database, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000"):
            _db.execute(f"PRAGMA {pragma}")
    return _db


_pg_pool: asyncio.Queue | None = None
_pg_opening = asyncio.Lock()


async def pg_connections() -> asyncio.Queue:
    """POOL_SIZE async connections of this worker, opened at its first request."""
    global _pg_pool
    if _pg_pool is not None:
        return _pg_pool
    async with _pg_opening:
        if _pg_pool is not None:
            return _pg_pool
        import psycopg

        from warehouse.db import POOL_SIZE
        from warehouse.schemas import SEARCH_PATH

        dsn = _url.set(drivername="postgresql").render_as_string(hide_password=False)
        options = f"-c search_path={','.join(SEARCH_PATH)} -c TimeZone=UTC"
        pool: asyncio.Queue = asyncio.Queue()
        for conn in await asyncio.gather(*(psycopg.AsyncConnection.connect(dsn, autocommit=True, options=options)
                                           for _ in range(POOL_SIZE))):
            pool.put_nowait(conn)
        _pg_pool = pool
        return pool


async def transaction(statements: list[tuple[str, tuple]]) -> list[int]:
    """Run ``statements`` in one transaction; the row counts."""
    counts = []
    if SQLITE:
        conn = db()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in statements:
                counts.append(conn.execute(sql, params).rowcount)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return counts
    pool = await pg_connections()
    conn = await pool.get()
    try:
        async with conn.transaction(), conn.cursor() as cur:
            for sql, params in statements:
                await cur.execute(sql, params)
                counts.append(cur.rowcount)
    finally:
        pool.put_nowait(conn)
    return counts


def stamp(moment: dt.datetime) -> str | dt.datetime:
    """A UTC time as the warehouse stores it (sortable text on SQLite)."""
    return UTCDateTime.raw(moment, "sqlite" if SQLITE else "postgresql")


def now() -> str | dt.datetime:
    return stamp(dt.datetime.now(dt.timezone.utc))


ORDER_COLUMNS = ("tenant_id", "order_id", "status", "email", "provider", "provider_package_id", "package_name",
                 "quantity", "unit_price", "amount_total", "currency", "amount_refunded", "request_hash",
                 "unlimited")
INSERT_ORDER = (f"INSERT INTO orders ({', '.join(ORDER_COLUMNS)}) VALUES ({', '.join([P] * len(ORDER_COLUMNS))})")


@app.post("/checkout", status_code=201)
async def checkout(request: Request) -> dict:
    global _stripe
    body = json.loads(await request.body())
    order_id = "ord_" + secrets.token_hex(12)
    await transaction([(INSERT_ORDER, (TENANT, order_id, "pending", body["email"], "esimcard", body["package_id"],
                                 "Japan 1 GB", 1, "3.99", "3.99", "USD", "0", "ceiling", False))])
    if _stripe is None:
        _stripe = stripe.StripeClient(os.environ["CEILING_STRIPE_KEY"],
                                      base_addresses={"api": os.environ["CEILING_STRIPE_URL"]},
                                      http_client=stripe.HTTPXClient(timeout=20))
    meta = {"order_id": order_id, "tenant_id": TENANT}
    session = await _stripe.v1.checkout.sessions.create_async(params={
        "mode": "payment", "customer_email": body["email"], "client_reference_id": order_id, "metadata": meta,
        "success_url": f"https://shop.test/orders/{order_id}/return", "cancel_url": f"https://shop.test/orders/{order_id}",
        "line_items": [{"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 399,
                                                      "product_data": {"name": "Japan 1 GB"}}}],
        "payment_intent_data": {"metadata": meta}})
    return {"order_id": order_id, "checkout_url": session.url}


INSERT_EVENT = (f"INSERT INTO webhook_events (tenant_id, event_id, type, order_id, outcome, stripe_created, payload, "
                f"received_at) VALUES ({', '.join([P] * 8)}) ON CONFLICT (tenant_id, event_id) DO NOTHING")
UPDATE_ORDER = f"UPDATE orders SET status = {P}, status_changed_at = {P} WHERE tenant_id = {P} AND order_id = {P}"
PAID = {"checkout.session.completed"}


@app.post("/webhook")
async def webhook(request: Request) -> Response:
    payload = await request.body()
    try:
        stripe.WebhookSignature.verify_header(payload.decode(), request.headers.get("stripe-signature", ""),
                                              os.environ["CEILING_WEBHOOK_SECRET"], tolerance=300)
    except stripe.SignatureVerificationError:
        return Response(status_code=400)
    event = json.loads(payload)
    obj = event["data"]["object"]
    order_id = (obj.get("metadata") or {}).get("order_id")
    at = now()
    created = dt.datetime.fromtimestamp(event["created"], dt.timezone.utc)
    await transaction([
        (INSERT_EVENT, (TENANT, event["id"], event["type"], order_id, "applied",
                        stamp(created), json.dumps(event), at)),
        (UPDATE_ORDER, ("paid" if event["type"] in PAID else "pending", at, TENANT, order_id)),
    ])
    return Response(b'{"outcome":"applied"}', media_type="application/json")
