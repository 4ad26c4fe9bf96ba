"""A create retried with its Idempotency-Key makes nothing twice and burns no document number;
the key with another body is refused (on SQLite, and PostgreSQL when DATABASE_URL names it)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from tests.people_world import client
from tests.studio_world import items, make_studio
from warehouse.tables.studio import studio_clients, studio_invoices


def test_creates_with_one_key_make_one_row_and_another_body_is_refused(engine, warehouse_url, tenant_id):
    studio = make_studio(engine, tenant_id)
    owner = {"Authorization": f"Bearer {studio.keys['tenant_owner']}"}
    base = f"/studios/{studio.tenant}"
    with client(engine, warehouse_url) as c:
        for path, body in ((f"{base}/clients", {"name": "Ada Retry"}),
                           (f"{base}/quotes", {"client_id": studio.client_id, "items": items("10.00")}),
                           (f"{base}/invoices", {"client_id": studio.client_id, "items": items("20.00")})):
            first = c.post(path, headers={**owner, "Idempotency-Key": f"k-{path}"}, json=body)
            again = c.post(path, headers={**owner, "Idempotency-Key": f"k-{path}"}, json=body)
            assert (first.status_code, again.status_code) == (201, 200), (first.text, again.text)
            assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
            other = c.post(path, headers={**owner, "Idempotency-Key": f"k-{path}"}, json={**body, "notes": "x"}
                           if "items" in body else {"name": "Someone Else"})
            assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused"), other.text
            assert "Idempotent-Replayed" not in c.post(path, headers=owner, json=body).headers  # no key: a new one

        # Racing retries of one invoice: one row, and the next invoice takes the very next number.
        body = {"client_id": studio.client_id, "items": items("30.00")}
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: c.post(f"{base}/invoices", headers={**owner, "Idempotency-Key": "race"},
                                                     json=body), range(8)))
        assert sorted(a.status_code for a in answers) == [200] * 7 + [201], [a.text for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1
        following = c.post(f"{base}/invoices", headers=owner, json=body).json()
    with engine.connect() as conn:
        numbers = conn.execute(sa.select(studio_invoices.c.number).where(studio_invoices.c.tenant_id == studio.tenant)
                               .order_by(studio_invoices.c.number)).scalars().all()
        named = conn.execute(sa.select(sa.func.count()).where(studio_clients.c.tenant_id == studio.tenant,
                                                             studio_clients.c.name == "Ada Retry")).scalar_one()
    assert numbers == list(range(1, len(numbers) + 1)) and following["number"] == numbers[-1]
    assert named == 2  # the keyed create once, and the one without a key
