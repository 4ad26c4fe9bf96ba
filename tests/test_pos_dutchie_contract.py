"""Dutchie against its own OpenAPI document: every exchange of our client with the fake validated
by openapi-core, and what the document allows beyond the plain case (several packages per
batch, held-back packages, medical-only and tier-priced products, a null productName, expired
medical ids, anonymous and merged customers, a key without a role) read the way a dispensary
needs it at the counter."""

from collections import defaultdict
from decimal import Decimal

import httpx
import pytest

from syncing.pos import sync_stream
from resources.dagster_resources import PosClientsResource
from resources.pos.dutchie import MissingRole
from resources.pos_orders import OrderDraft, OrderLine, submit_order
from tests.dutchie_contract import ContractCheck
from tests.pos_accounts import new_account
from tests.test_pos_assets import connect, materialize, rows
from warehouse.syncs import Rejected
from warehouse.tables.pos import customers, inventory, products

FAST = PosClientsResource(max_attempts=2, backoff_base_s=0.01)


def raw(account, path, **params):
    return httpx.get(f"{account.base_url}{path}", params=params, auth=(account.credentials["api_key"], ""),
                     timeout=10).json()


def loaded(engine, account, tenant_id):
    """Products, inventory and customers of ``account`` synced into the warehouse as ``tenant_id``."""
    client = FAST.client_for(account.connection(tenant_id))
    try:
        for kind in ("products", "inventory", "customers"):
            sync_stream(engine, client, tenant_id, kind)
    finally:
        client.close()


@pytest.mark.parametrize("variety", [False, True])
def test_every_exchange_of_the_client_with_the_fake_follows_the_document(sandbox, engine, tenant_id, variety):
    account = new_account(sandbox.url, "dutchie", products=40, customers=30, variety=variety)
    client = FAST.client_for(account.connection(tenant_id, customer_page_size=7))
    check = ContractCheck(account.base_url).attach(client)
    try:
        for kind in ("products", "inventory", "customers"):
            sync_stream(engine, client, tenant_id, kind)
        product_id = next(r["product_id"] for r in rows(engine, products, tenant_id) if r["status"] == "active")
        customer_id = rows(engine, customers, tenant_id)[0]["customer_id"]
        draft = OrderDraft(tenant_id, "contract-1", customer_id, (OrderLine(product_id, 1),))
        first = submit_order(client, draft)
        assert submit_order(client, draft).provider_order_id == first.provider_order_id  # deduplicated
        client.session.request("GET", "/customer/customers-paginated", params={"PageSize": 10001})  # a 400
    except Exception as exc:
        assert "400" in str(exc)
    finally:
        client.close()
    assert check.errors == [], "\n".join(check.errors)
    assert len(check.exchanges) >= 10 and any("-> 400" in x for x in check.exchanges)
    assert any(x.startswith("POST /dutchie/preorder/submit -> 200") for x in check.exchanges)


def test_two_packages_of_one_batch_are_two_lots_and_held_packages_are_not_sellable(sandbox, engine, tenant_id):
    account = new_account(sandbox.url, "dutchie", products=30, customers=0, variety=True)
    served = raw(account, "/inventory")
    per_batch = defaultdict(list)
    for item in served:
        per_batch[(item["productId"], item["batchName"])].append(item)
    assert any(len(v) == 2 for v in per_batch.values())  # the fake does split batches
    loaded(engine, account, tenant_id)
    stock = rows(engine, inventory, tenant_id, inventory.c.deleted_at.is_(None))
    assert len(stock) == len(served)  # one row per package
    assert sum(r["quantity"] for r in stock) == sum(Decimal(str(i["quantityAvailable"])) for i in served)
    by_lot = {r["lot_id"]: r for r in stock}
    for item in served:
        row = by_lot[item["packageId"]]
        assert row["compliance_id"] == item["externalPackageId"] != item["packageId"]  # the state tag
        sellable = item["packageStatus"] == "Active" and item["labTestStatus"] == "Passed"
        assert row["available"] is sellable, item
    assert {i["packageStatus"] for i in served} >= {"Quarantine", "Testing"}
    assert {i["labTestStatus"] for i in served} >= {"Failed", "Pending"}


def test_products_tiers_names_medical_only_and_flower_equivalents(sandbox, engine, tenant_id):
    account = new_account(sandbox.url, "dutchie", products=40, customers=0, variety=True)
    served = {str(p["productId"]): p for p in raw(account, "/products")}
    loaded(engine, account, tenant_id)
    got = {r["product_id"]: r for r in rows(engine, products, tenant_id)}
    assert set(got) == set(served)  # a null productName is allowed, not quarantined
    nameless = [pid for pid, p in served.items() if p["productName"] is None]
    tiered = [pid for pid, p in served.items() if p["price"] is None and p["pricingTierData"]]
    medical = [pid for pid, p in served.items() if p["isMedicalOnly"]]
    assert nameless and tiered and medical
    for pid in nameless:
        assert got[pid]["name"] and got[pid]["source_name"] == served[pid]["internalName"]
    for pid in tiered:
        first = min(served[pid]["pricingTierData"], key=lambda t: t["startWeight"] or 0)
        assert got[pid]["price"] == Decimal(str(first["price"]))
        assert len(got[pid]["attributes"]["pricing_tiers"]) == 2
    assert all(got[pid]["attributes"]["medical_only"] is True for pid in medical)
    assert not any(got[pid]["attributes"].get("medical_only") for pid in set(served) - set(medical))
    rec = [pid for pid, p in served.items() if p.get("recFlowerEquivalent") is not None]
    assert rec and all(Decimal(got[pid]["attributes"]["rec_flower_equivalent_g"]) ==
                       Decimal(str(served[pid]["recFlowerEquivalent"])) for pid in rec)


def test_customers_anonymous_left_out_merged_deleted_and_medical_id_expiry_kept(sandbox, engine, tenant_id):
    account = new_account(sandbox.url, "dutchie", products=5, customers=40, variety=True)
    served = {str(c["customerId"]): c for c in raw(account, "/customer/customers-paginated", PageSize=1000)}
    loaded(engine, account, tenant_id)
    got = {r["customer_id"]: r for r in rows(engine, customers, tenant_id)}
    anonymous = {k for k, c in served.items() if c["isAnonymous"]}
    merged = {k for k, c in served.items() if c["mergedIntoCustomerId"] is not None}
    assert anonymous and merged and not anonymous & set(got)
    assert all(got[k]["deleted_at"] is not None and got[k]["status"] == "deleted" for k in merged)
    live = {k for k, r in got.items() if r["deleted_at"] is None}
    assert live == set(served) - anonymous - merged
    expired = [k for k, c in served.items() if c["mmjidNumber"] and c["mmjidExpirationDate"] < "2025"]
    assert expired and all(str(got[k]["medical_id_expires_on"]) == "2024-01-31" for k in expired)


def test_a_key_without_a_role_is_told_apart_from_rejected_credentials(sandbox, tenant_id):
    account = new_account(sandbox.url, "dutchie", products=5, customers=2, roles=["Product", "Customer"])
    client = FAST.client_for(account.connection(tenant_id))
    try:
        assert len(list(client.iter_products())) == 5
        with pytest.raises(MissingRole) as caught:
            list(client.iter_inventory())
    finally:
        client.close()
    assert caught.value.status == 403 and "lacks the role" in str(caught.value)
    assert "credentials rejected" not in str(caught.value)


def test_a_record_without_any_name_is_still_rejected(sandbox):
    from resources.pos.base import translate
    from resources.pos.dutchie import DutchieProduct, product_record

    out = translate({"productId": 5, "productName": None, "isActive": True}, DutchieProduct, "productId", product_record)
    assert isinstance(out, Rejected) and "productName" in out.reason


def test_a_sync_with_a_key_missing_a_role_says_so_not_that_the_credentials_are_wrong(sandbox, warehouse, engine,
                                                                                    tenant_id):
    account = new_account(sandbox.url, "dutchie", products=5, customers=2, roles=["Product", "Customer"])
    connect(engine, tenant_id, account)
    result = materialize(warehouse, tenant_id, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    text = failure.step_failure_data.user_failure_data.description
    assert "lacks the role for GET /inventory" in text and "credentials" not in text
    assert len(rows(engine, products, tenant_id)) == 5  # the permitted streams still load
