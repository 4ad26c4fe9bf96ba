"""The MX Merchant fake is consistent with itself: every referenced invoice exists and is listed once."""

import httpx
import pytest


@pytest.mark.parametrize("transactions", [1, 37, 251, 1000])
def test_every_referenced_invoice_is_listed_and_served(sandbox, transactions):
    merchant = {"merchant_id": 777000 + transactions, "consumer_key": "k", "consumer_secret": "s",
                "transactions": transactions, "invoice_ids_on_payments": True, "seed": transactions}
    httpx.post(f"{sandbox.url}/_sandbox/mx/merchants", json=merchant).raise_for_status()
    client = httpx.Client(base_url=f"{sandbox.url}/mx/checkout/v3", auth=("k", "s"),
                          params={"merchantId": merchant["merchant_id"]})
    payments = client.get("/payment", params={"limit": 1000}).json()
    assert payments["recordCount"] == transactions == len(payments["records"])
    referenced = {p["invoiceIds"][0]: p["invoice"] for p in payments["records"] if p.get("invoiceIds")}
    listed = client.get("/invoice", params={"limit": 1000}).json()
    ids = [r["id"] for r in listed["records"]]
    assert len(ids) == len(set(ids)) == listed["recordCount"]
    assert set(ids) == set(referenced)
    for invoice_id, number in list(referenced.items())[:20]:
        detail = client.get(f"/invoice/{invoice_id}").json()
        assert detail["invoiceNumber"] == number and detail["purchases"]
    first_page = client.get("/invoice", params={"limit": 2, "offset": 0}).json()["records"]
    second_page = client.get("/invoice", params={"limit": 2, "offset": 2}).json()["records"]
    assert [r["id"] for r in first_page + second_page] == ids[:4]


def test_key_sees_nothing_of_another_merchant(sandbox):
    httpx.post(f"{sandbox.url}/_sandbox/mx/merchants",
               json={"merchant_id": 880001, "consumer_key": "a", "consumer_secret": "a", "transactions": 5}).raise_for_status()
    response = httpx.get(f"{sandbox.url}/mx/checkout/v3/payment", auth=("downtown-key", "downtown-secret"),
                         params={"merchantId": 880001})
    assert response.status_code == 403
    assert httpx.get(f"{sandbox.url}/mx/checkout/v3/payment", auth=("a", "wrong"), params={"merchantId": 880001}).status_code == 401
