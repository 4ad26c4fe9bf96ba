"""Document numbers: per studio and kind, 1…N with no duplicate and no gap among committed
documents, under concurrent creation: threads on one engine (SQLite, or PostgreSQL when
DATABASE_URL names it), and two API worker processes on PostgreSQL with many HTTP clients."""

from __future__ import annotations

import concurrent.futures as cf
import os

import httpx
import pytest
import sqlalchemy as sa

from studio import invoices, quotes
from studio.activity import Actor
from studio.business import save_business
from studio.db import writing
from studio.numbers import next_document_number
from tests.api_storefront import ApiProcess, free_port, settings_for
from tests.conftest import requires_postgres
from tests.studio_world import items, make_studio
from warehouse.tables.studio import studio_invoices, studio_quotes
from warehouse.tenants import add_tenant

N = 400
STAFF = Actor("staff")


def numbers_of(engine, table: sa.Table, tenant: str) -> list[int]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(table.c.number).where(table.c.tenant_id == tenant)).scalars())


def test_400_concurrent_creations_get_exactly_1_to_400(engine, tenant_id):
    studio = make_studio(engine, tenant_id, roles=())

    def create(i: int) -> str:
        with writing(engine) as conn:
            if i % 2:
                made = quotes.create_quote(conn, tenant_id, studio.client_id, items("10.00"), STAFF)
            else:
                made = invoices.create_invoice(conn, tenant_id, studio.client_id, items("10.00"), STAFF)
        with engine.connect() as conn:
            read = quotes.get_quote if i % 2 else invoices.get_invoice
            return read(conn, tenant_id, made)["document_number"]

    with cf.ThreadPoolExecutor(16) as pool:
        printed = list(pool.map(create, range(2 * N)))
    assert numbers_of(engine, studio_quotes, tenant_id) == list(range(1, N + 1))
    assert numbers_of(engine, studio_invoices, tenant_id) == list(range(1, N + 1))
    assert len(set(printed)) == 2 * N
    assert {p for p in printed if p.startswith("Q-")} == {f"Q-{n:04d}" for n in range(1, N + 1)}


def test_a_rolled_back_creation_leaves_no_gap_and_tenants_count_apart(engine, tenant_id):
    make_studio(engine, tenant_id, roles=())
    other = make_studio(engine, f"{tenant_id}-b", roles=()).tenant
    with writing(engine) as conn:
        assert next_document_number(conn, tenant_id, "quote")[0] == 1
    with pytest.raises(RuntimeError):
        with writing(engine) as conn:
            assert next_document_number(conn, tenant_id, "quote")[0] == 2
            raise RuntimeError("the document's insert failed")
    with writing(engine) as conn:
        assert next_document_number(conn, tenant_id, "quote") == (2, "Q-0002")
        assert next_document_number(conn, other, "quote") == (1, "Q-0001")
        assert next_document_number(conn, tenant_id, "invoice") == (1, "INV-0001")


def test_the_prefix_is_the_studios_and_changing_it_keeps_counting(engine, tenant_id):
    make_studio(engine, tenant_id, roles=())
    with writing(engine) as conn:
        assert next_document_number(conn, tenant_id, "invoice")[1] == "INV-0001"
        save_business(conn, tenant_id, STAFF, invoice_prefix="PS-2026/")
        assert next_document_number(conn, tenant_id, "invoice")[1] == "PS-2026/0002"
        add_tenant(conn, f"{tenant_id}-new")  # no business details saved yet: the default given
        assert next_document_number(conn, f"{tenant_id}-new", "quote", "EST-")[1] == "EST-0001"


@requires_postgres("two API worker processes share one database")
def test_two_api_workers_and_many_clients_number_400_documents_1_to_400(engine, warehouse_url, tenant_id):
    studio = make_studio(engine, tenant_id, roles=("tenant_owner",))
    port = int(os.environ.get("STOREHOUSE_TEST_API_PORT") or free_port())
    api = ApiProcess(settings_for(warehouse_url, port), workers=2).start()
    try:
        headers = {"Authorization": f"Bearer {studio.keys['tenant_owner']}"}
        url = f"{api.url}/studios/{tenant_id}/quotes"
        body = {"client_id": studio.client_id, "items": items("12.50", "3.00")}

        def create(_: int) -> tuple[int, str]:
            with httpx.Client(timeout=30) as client:  # a connection per request: both workers take them
                answer = client.post(url, json=body, headers=headers)
            return answer.status_code, answer.json().get("document_number", answer.text)

        with cf.ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(create, range(N)))
    finally:
        api.stop()
    assert {status for status, _ in answers} == {201}, [a for a in answers if a[0] != 201][:3]
    assert numbers_of(engine, studio_quotes, tenant_id) == list(range(1, N + 1))
    assert sorted(printed for _, printed in answers) == [f"Q-{n:04d}" for n in range(1, N + 1)]


def test_concurrent_conversions_of_one_quote_make_one_invoice(engine, tenant_id):
    studio = make_studio(engine, tenant_id, roles=())
    with writing(engine) as conn:
        quote_id = quotes.create_quote(conn, tenant_id, studio.client_id, items("40.00"), STAFF)
        quotes.send_quote(conn, tenant_id, quote_id, STAFF)
        quotes.accept_quote(conn, tenant_id, quote_id, STAFF)

    def convert(_: int) -> tuple[int, bool]:
        with writing(engine) as conn:
            invoice, created = quotes.convert_quote(conn, tenant_id, quote_id, STAFF)
        return invoice["id"], created

    with cf.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(convert, range(16)))
    assert len({invoice for invoice, _ in answers}) == 1
    assert sum(created for _, created in answers) == 1
    assert numbers_of(engine, studio_invoices, tenant_id) == [1]
