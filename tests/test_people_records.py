"""Transactions and invoices for staff: filters, cursor pages, detail with lines, the customer
portal's scope, and the nurse's data-sent flag (audited)."""

from __future__ import annotations

import sqlalchemy as sa

from tests.people_world import CUSTOMER_ID, bearer, client, make_world, sign_in
from warehouse.tables.people import audit_log, invoice_data_sent


def _all(c, url, headers, **params):
    items, cursor, pages = [], None, 0
    while True:
        answer = c.get(url, headers=headers, params={**params, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            return items, pages


def test_transactions_filter_and_page_by_cursor(engine, warehouse_url, tenant_id):
    world = make_world(engine, tenant_id, n=25)
    with client(engine, warehouse_url) as c:
        h = bearer(sign_in(c, world.users["viewer"])["access_token"])
        url = f"/tenants/{world.own}/transactions"
        items, pages = _all(c, url, h, limit=4)
        assert [i["id"] for i in items] == list(range(25, 0, -1)) and pages == 7  # newest first, nothing twice
        assert all(i["customer_name"].startswith("OWN") for i in items)
        linked, _ = _all(c, url, h, linked="true")
        assert {i["id"] for i in linked} == set(range(2, 26, 2)) and all(i["has_invoice"] for i in linked)
        unlinked, _ = _all(c, url, h, linked="false")
        assert {i["id"] for i in unlinked} == set(range(1, 26, 2))
        declined, _ = _all(c, url, h, status="Declined")
        assert {i["id"] for i in declined} == {3, 6, 9, 12, 15, 18, 21, 24}
        ranged, _ = _all(c, url, h, since="2026-01-01T05:00:00Z", until="2026-01-01T08:00:00Z", category="Injectables")
        assert [i["id"] for i in ranged] == [6]
        assert items[0]["amount"] == "25.5000"
        bad = c.get(url, headers=h, params={"cursor": "not-a-cursor"})
        assert bad.status_code == 400 and bad.json()["type"].endswith("/bad-cursor")
        assert c.get(url, headers=h, params={"limit": 501}).status_code == 422
        detail = c.get(f"{url}/4", headers=h).json()
        assert detail["invoice"]["invoice_number"] == "INV-4"
        assert [(line["product_name"], line["total_amount"]) for line in detail["invoice"]["lines"]] == [
            ("Botox", "20.0000"), ("Filler", "10.0000")]
        assert c.get(f"{url}/999", headers=h).status_code == 404


def test_invoices_pages_and_detail(engine, warehouse_url, tenant_id):
    world = make_world(engine, tenant_id, n=10)
    with client(engine, warehouse_url) as c:
        h = bearer(sign_in(c, world.users["nurse"])["access_token"])
        items, pages = _all(c, f"/tenants/{world.own}/invoices", h, limit=2)
        assert [i["id"] for i in items] == [10, 8, 6, 4, 2] and pages == 3
        assert all(i["data_sent"] is False for i in items)
        detail = c.get(f"/tenants/{world.own}/invoices/6", headers=h).json()
        assert detail["transaction_ids"] == [6] and len(detail["lines"]) == 2


def test_the_customer_portal_sees_only_its_own_rows(engine, warehouse_url, tenant_id):
    world = make_world(engine, tenant_id, n=12)
    with client(engine, warehouse_url) as c:
        h = bearer(sign_in(c, world.users["customer"])["access_token"])
        txs, _ = _all(c, f"/tenants/{world.own}/transactions", h)
        invs, _ = _all(c, f"/tenants/{world.own}/invoices", h)
        assert {i["id"] for i in txs} == {4, 8, 12} == {i["id"] for i in invs}
        assert all(i["customer_id"] == CUSTOMER_ID for i in invs)
        assert c.get(f"/tenants/{world.own}/transactions/2", headers=h).status_code == 404  # another customer's
        assert c.get(f"/tenants/{world.own}/invoices/2", headers=h).status_code == 404
        assert c.get(f"/tenants/{world.own}/invoices/4", headers=h).status_code == 200


def test_the_nurse_sets_data_sent_and_it_is_audited(engine, warehouse_url, tenant_id):
    world = make_world(engine, tenant_id, n=4)
    with client(engine, warehouse_url) as c:
        nurse = bearer(sign_in(c, world.users["nurse"])["access_token"])
        url = f"/tenants/{world.own}/invoices/4/data-sent"
        assert c.put(url, json={"data_sent": True}, headers=nurse).json() == {"data_sent": True}
        assert c.get(f"/tenants/{world.own}/invoices/4", headers=nurse).json()["data_sent"] is True
        assert c.put(f"/tenants/{world.own}/invoices/3/data-sent", json={"data_sent": True},
                     headers=nurse).status_code == 404  # no such invoice (3 is unlinked)
        viewer = bearer(sign_in(c, world.users["viewer"])["access_token"])
        assert c.put(url, json={"data_sent": False}, headers=viewer).status_code == 403  # viewers read only
        assert c.put(url, json={"data_sent": "maybe"}, headers=nurse).status_code == 422
    with engine.connect() as conn:
        flag = conn.execute(sa.select(invoice_data_sent.c.data_sent).where(
            invoice_data_sent.c.tenant_id == world.own, invoice_data_sent.c.invoice_id == 4)).scalar()
        logged = conn.execute(sa.select(audit_log.c.action, audit_log.c.detail).where(
            audit_log.c.tenant_id == world.own, audit_log.c.action == "invoices.update_data_sent")).all()
    assert flag is True and [d for _, d in logged] == [{"invoice_id": 4, "data_sent": True}]


def test_exports_stream_csv_and_parquet_and_are_audited(engine, warehouse_url, tenant_id):
    import csv
    import io

    import pyarrow.parquet as pq

    world = make_world(engine, tenant_id, n=30)
    with client(engine, warehouse_url) as c:
        staff = bearer(sign_in(c, world.users["clinic_staff"])["access_token"])
        url = f"/tenants/{world.own}/exports/transactions"
        got = c.get(url, headers=staff)
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
        assert "attachment" in got.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(got.text)))
        assert [int(r["id"]) for r in rows] == list(range(1, 31)) and rows[0]["amount"] == "1.5000"
        assert "FOREIGN" not in got.text
        linked = list(csv.DictReader(io.StringIO(c.get(url, headers=staff, params={"linked": "true"}).text)))
        assert len(linked) == 15 and {r["has_invoice"] for r in linked} == {"true"}
        parquet = c.get(url, headers=staff, params={"format": "parquet"})
        assert parquet.status_code == 200
        table = pq.read_table(io.BytesIO(parquet.content))
        assert table.num_rows == 30 and table.column("id").to_pylist() == list(range(1, 31))
        assert str(table.schema.field("amount").type) == "decimal128(18, 4)"
        assert str(table.column("amount")[1].as_py()) == "2.5000"
        invoices = pq.read_table(io.BytesIO(c.get(f"/tenants/{world.own}/exports/invoices", headers=staff,
                                                  params={"format": "parquet"}).content))
        assert invoices.num_rows == 15 and "data_sent" in invoices.column_names
        empty = c.get(url, headers=staff, params={"since": "2030-01-01T00:00:00Z"})
        assert empty.text.startswith("id,amount,") and len(empty.text.splitlines()) == 1
        assert c.get(url, headers=staff, params={"format": "xlsx"}).status_code == 422
        nurse = bearer(sign_in(c, world.users["nurse"])["access_token"])
        assert c.get(url, headers=nurse).status_code == 403
    with engine.connect() as conn:
        logged = conn.execute(sa.select(audit_log.c.detail).where(audit_log.c.tenant_id == world.own,
                                                                  audit_log.c.action == "export")
                              .order_by(audit_log.c.id)).scalars().all()
    assert len(logged) == 5 and logged[0]["what"] == "transactions" and logged[0]["format"] == "csv"
