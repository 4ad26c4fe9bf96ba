"""On SQLite a Stripe delivery's transaction runs on the event loop, unless another writer holds
the database: then it waits its turn in a thread, and the loop goes on serving meanwhile."""

import asyncio
import sqlite3
import threading

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from api.app import create_app
from tests.api_storefront import settings_for
from tests.conftest import postgres_url
from tests.test_api_http import make_storefront, pending_order, session_event, signed
from warehouse.tables.orders import orders, provisioning_jobs, webhook_events

pytestmark = pytest.mark.skipif(postgres_url() is not None, reason="SQLite's writers (PostgreSQL runs in threads)")


def app_for(warehouse_url, engine):
    return create_app(settings_for(warehouse_url, 8000, worker_enabled=False), engine)


async def deliver_behind(app, tenant_id: str, body: bytes, hold, release) -> tuple[httpx.Response, bool]:
    """Deliver ``body`` while ``hold()`` keeps the database; ``release()`` once the loop has
    answered another request. (The delivery's response, whether it was answered before that.)
    Then the same again, answered as a duplicate (on the loop, whose connection the refusal left usable)."""
    transport = httpx.ASGITransport(app=app)
    url = f"/shops/{tenant_id}/webhooks/stripe"
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        hold()
        delivery = asyncio.ensure_future(client.post(url, content=body, headers=signed(body)))
        await asyncio.sleep(0.2)
        health = await asyncio.wait_for(client.get("/healthz"), 5)  # the loop is not blocked by the waiting writer
        assert health.status_code == 200
        early = delivery.done()
        release()
        response = await asyncio.wait_for(delivery, 10)
        again = await client.post(url, content=body, headers=signed(body))
        assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
        return response, early


def state(engine, tenant_id: str) -> tuple[str, list, int]:
    with engine.connect() as conn:
        status = conn.execute(sa.select(orders.c.status).where(orders.c.tenant_id == tenant_id)).scalar_one()
        events = conn.execute(sa.select(webhook_events.c.outcome).where(webhook_events.c.tenant_id == tenant_id)).all()
        jobs = conn.execute(sa.select(sa.func.count()).select_from(provisioning_jobs)
                            .where(provisioning_jobs.c.tenant_id == tenant_id)).scalar_one()
    return status, [o for (o,) in events], jobs


def test_behind_another_process_writer_the_delivery_waits_in_a_thread(warehouse_url, engine, tenant_id):
    make_storefront(engine, tenant_id)
    order_id = pending_order(engine, tenant_id)
    other = sqlite3.connect(make_url(warehouse_url).database, isolation_level=None, check_same_thread=False)
    response, early = asyncio.run(deliver_behind(app_for(warehouse_url, engine), tenant_id,
                                                 session_event(tenant_id, order_id, 399),
                                                 lambda: other.execute("BEGIN IMMEDIATE"),
                                                 lambda: other.execute("COMMIT")))
    other.close()
    assert not early and response.status_code == 200 and response.json()["outcome"] == "applied"
    assert state(engine, tenant_id) == ("paid", ["applied"], 1)


def test_behind_this_process_writer_the_delivery_waits_in_a_thread(warehouse_url, engine, tenant_id):
    make_storefront(engine, tenant_id)
    order_id = pending_order(engine, tenant_id)
    writer = engine.connect()
    holding, done = threading.Event(), threading.Event()

    def hold() -> None:  # a worker thread's transaction, holding this process's write lock
        def write() -> None:
            writer.execute(sa.update(orders).where(orders.c.tenant_id == tenant_id).values(email="c@d.io"))
            holding.set()
            done.wait(10)
            writer.commit()
        threading.Thread(target=write, daemon=True).start()
        assert holding.wait(5)

    response, early = asyncio.run(deliver_behind(app_for(warehouse_url, engine), tenant_id,
                                                 session_event(tenant_id, order_id, 399), hold, done.set))
    writer.close()
    assert not early and response.status_code == 200 and response.json()["outcome"] == "applied"
    assert state(engine, tenant_id) == ("paid", ["applied"], 1)


def test_with_no_other_writer_the_delivery_and_its_duplicate_run_on_the_loop(warehouse_url, engine, tenant_id):
    make_storefront(engine, tenant_id)
    order_id = pending_order(engine, tenant_id)
    app = app_for(warehouse_url, engine)
    body = session_event(tenant_id, order_id, 399)

    async def twice() -> list[str]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return [(await client.post(f"/shops/{tenant_id}/webhooks/stripe", content=body,
                                       headers=signed(body))).json()["outcome"] for _ in range(2)]

    threads = set()

    def seen(_conn, _cursor, statement: str, *_args) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE")):  # the event's (the shop is read apart)
            threads.add(threading.get_ident())

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", seen)  # every engine's statements
    try:
        assert asyncio.run(twice()) == ["applied", "duplicate"]
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", seen)
    assert threads == {threading.get_ident()}  # every write ran on the loop's thread
    assert state(engine, tenant_id) == ("paid", ["applied"], 1)
