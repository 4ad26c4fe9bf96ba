"""Orders to a POS: validation against the warehouse (stock, daily limits, age), submission in each
provider's own format with its confirmation stored, replays, and Portaus payment intents."""

import datetime as dt
import uuid
from collections import defaultdict
from decimal import Decimal

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from assets.partitions import pos_partitions
from pipelines.pos import pos_assets
from resources.dagster_resources import PosClientsResource
from tests.api_storefront import free_port, settings_for
from tests.pos_accounts import new_account
from warehouse.tables.core import tenant_connections
from warehouse.tables.pos import customers, inventory, products
from warehouse.tables.pos_events import portaus_payment_intents, pos_orders
from warehouse.tenants import add_tenant, set_connection

FAST = PosClientsResource(max_attempts=2, backoff_base_s=0.01)
ORDER_SYSTEMS = ["treez", "dutchie", "blaze", "flowhub", "cova", "shopify"]
ADULT = dt.date(1980, 5, 17)


@pytest.fixture(scope="module")
def client(engine, warehouse_url):
    return TestClient(create_app(settings_for(warehouse_url, free_port(), worker_enabled=False), engine))


def open_storefront(sandbox, engine, warehouse, tenant_id, system, order_rules=None, products_n=25, customers_n=8, **spec):
    """A tenant on a fresh sandbox account with its catalog, stock and customers loaded."""
    account = new_account(sandbox.url, system, products=products_n, customers=customers_n, **spec)
    key = f"key-{uuid.uuid4().hex}"
    options = {**account.options, **({"order_rules": order_rules} if order_rules else {})}
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, tenant_id)
        set_connection(conn, tenant_id, system, account.base_url, {**account.credentials, "orders_api_key": key}, options)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(pos_partitions.name, [tenant_id])
    assert dg.materialize(pos_assets, partition_key=tenant_id, instance=instance,
                          resources={"warehouse": warehouse, "pos_clients": FAST}).success
    return account, {"Authorization": f"Bearer {key}"}


def in_stock(engine, tenant_id, minimum=2, weighed=True):
    """(product id, live quantity) of an active product with stock, by weight if asked (grams known)."""
    p, i = products.c, inventory.c
    query = (sa.select(p.product_id, sa.func.sum(sa.cast(i.quantity, sa.Numeric)))
             .join(inventory, sa.and_(i.tenant_id == p.tenant_id, i.source == p.source, i.product_id == p.product_id))
             .where(p.tenant_id == tenant_id, p.status == "active", i.available.is_(True), i.deleted_at.is_(None),
                    i.quantity_capped.is_(False), (p.weight_g.is_not(None)) if weighed else sa.true())
             .group_by(p.product_id).having(sa.func.sum(sa.cast(i.quantity, sa.Numeric)) >= minimum)
             .order_by(p.product_id))
    with engine.connect() as conn:
        product_id, quantity = conn.execute(query).first()
    return product_id, Decimal(quantity)


def a_customer(engine, tenant_id, customer_type=None):
    c = customers.c
    query = sa.select(c.customer_id).where(c.tenant_id == tenant_id).order_by(c.customer_id)
    if customer_type == "recreational":
        query = query.where(sa.or_(c.customer_type.is_(None), c.customer_type == "recreational"), c.medical_id.is_(None))
    with engine.connect() as conn:
        return conn.execute(query).scalar()


def set_rules(engine, tenant_id, **rules):
    with engine.begin() as conn:
        conn.execute(sa.update(tenant_connections).where(tenant_connections.c.tenant_id == tenant_id)
                     .values(options={"order_rules": rules}))


def grams_of(engine, tenant_id, product_id):
    p = products.c
    with engine.connect() as conn:
        return conn.execute(sa.select(p.weight_g).where(p.tenant_id == tenant_id, p.product_id == product_id)).scalar()


def order(ref, customer, items, **extra):
    return {"order_ref": ref, "customer": {"id": customer, "birth_date": ADULT.isoformat()},
            "items": [{"product_id": pid, "quantity": q} for pid, q in items], **extra}


def stored(engine, tenant_id, ref):
    o = pos_orders.c
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(pos_orders).where(o.tenant_id == tenant_id, o.order_ref == ref)).mappings().one())


def sandbox_orders(account):
    creds = account.credentials
    path = {"flowhub": f"/_sandbox/flowhub/clients/{creds.get('client_id')}/orders",
            "cova": f"/_sandbox/cova/companies/{creds.get('company_id')}/orders"}.get(account.system, f"{account.control}/orders")
    return httpx.get(f"{account.sandbox}{path}", timeout=10).json()


def received_lines(system, got):
    """(product id, quantity) of an order as the POS received it, in its own field names."""
    if system == "treez":
        return [(x["product_id"], x["quantity"]) for x in got["items"]]
    if system == "dutchie":
        return [(str(x["productId"]), x["quantity"]) for x in got["request"]["items"]]
    if system in ("blaze", "flowhub"):
        return [(x["productId"], x["quantity"]) for x in got["items"]]
    if system == "cova":
        return [(x["ProductId"], x["Quantity"]) for x in got["Order"]["Items"]]
    return [(str(x["variant_id"]), x["quantity"]) for x in got["line_items"]]


def provider_id(system, got):
    return str({"treez": got.get("ticket_id"), "dutchie": got.get("orderId"), "blaze": got.get("id"),
                "flowhub": got.get("orderId"), "cova": got.get("OrderId"), "shopify": got.get("id")}[system])


@pytest.mark.parametrize("system", ORDER_SYSTEMS)
def test_valid_order_is_submitted_in_the_providers_format_and_confirmed(sandbox, client, engine, warehouse, tenant_id, system):
    account, auth = open_storefront(sandbox, engine, warehouse, tenant_id, system)
    product_id, _ = in_stock(engine, tenant_id, weighed=False)
    customer = a_customer(engine, tenant_id)
    ref = f"web-{uuid.uuid4().hex[:8]}"
    response = client.post(f"/shops/{tenant_id}/pos/orders", json=order(ref, customer, [(product_id, 2)]), headers=auth)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "submitted" and body["provider"] == system and body["provider_order_id"]
    [got] = sandbox_orders(account)
    assert received_lines(system, got) == [(product_id, 2)]
    assert provider_id(system, got) == body["provider_order_id"]
    row = stored(engine, tenant_id, ref)
    assert row["status"] == "submitted" and row["confirmation"] and row["provider_request"]
    assert row["total"] == Decimal(row["items"][0]["unit_price"]) * 2
    replay = client.post(f"/shops/{tenant_id}/pos/orders", json=order(ref, customer, [(product_id, 2)]), headers=auth)
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["provider_order_id"] == body["provider_order_id"]
    assert len(sandbox_orders(account)) == 1  # not placed twice
    fetched = client.get(f"/shops/{tenant_id}/pos/orders/{ref}", headers=auth)
    assert fetched.status_code == 200 and fetched.json()["provider_order_id"] == body["provider_order_id"]


def test_validation_rejects_out_of_stock_over_limit_and_under_age(sandbox, client, engine, warehouse, tenant_id):
    account, auth = open_storefront(sandbox, engine, warehouse, tenant_id, "dutchie")
    url = f"/shops/{tenant_id}/pos/orders"
    product_id, quantity = in_stock(engine, tenant_id)
    customer = a_customer(engine, tenant_id, "recreational")

    short = client.post(url, json=order("o-stock", customer, [(product_id, int(quantity) + 1)]), headers=auth)
    assert short.status_code == 422 and short.headers["content-type"] == "application/problem+json"
    assert short.json()["type"].endswith("/out-of-stock") and f"{int(quantity) + 1} of {product_id}" in short.json()["detail"]

    limit = grams_of(engine, tenant_id, product_id) * Decimal("1.5")  # one unit fits, two do not
    set_rules(engine, tenant_id, daily_limit_g={"recreational": str(limit)})
    heavy = client.post(url, json=order("o-limit", customer, [(product_id, 2)]), headers=auth)
    assert heavy.status_code == 422 and heavy.json()["type"].endswith("/purchase-limit-exceeded")
    assert f"recreational daily limit of {limit:f} g" in heavy.json()["detail"]

    young = client.post(url, json={**order("o-young", "not-on-file", [(product_id, 1)]),
                                   "customer": {"id": "not-on-file", "birth_date": str(dt.date.today().year - 19) + "-01-01"}},
                        headers=auth)
    assert young.status_code == 422 and young.json()["type"].endswith("/under-age")
    nobody = client.post(url, json={**order("o-nobody", "x", [(product_id, 1)]), "customer": {"id": "x"}}, headers=auth)
    assert nobody.json()["type"].endswith("/age-unverified")
    unknown = client.post(url, json=order("o-unknown", customer, [("no-such-product", 1)]), headers=auth)
    assert unknown.status_code == 422 and unknown.json()["type"].endswith("/unknown-product")

    assert sandbox_orders(account) == []  # nothing reached the POS
    assert stored(engine, tenant_id, "o-stock")["status"] == "rejected"
    assert stored(engine, tenant_id, "o-stock")["validation"]["problems"][0]["code"] == "out-of-stock"


def test_daily_limit_counts_earlier_orders_and_the_pos_record_decides_age(sandbox, client, engine, warehouse, tenant_id):
    account, auth = open_storefront(sandbox, engine, warehouse, tenant_id, "treez", products_n=40)
    url = f"/shops/{tenant_id}/pos/orders"
    product_id, quantity = in_stock(engine, tenant_id, minimum=2)
    customer = a_customer(engine, tenant_id)
    grams = grams_of(engine, tenant_id, product_id)
    limit = str(grams * Decimal("1.5"))  # one unit fits, two do not
    set_rules(engine, tenant_id, daily_limit_g={"recreational": limit, "medical": limit})
    first = client.post(url, json=order("day-1", customer, [(product_id, 1)]), headers=auth)
    assert first.status_code == 201, first.text
    second = client.post(url, json=order("day-2", customer, [(product_id, 1)]), headers=auth)
    assert second.status_code == 422 and second.json()["type"].endswith("/purchase-limit-exceeded")
    assert stored(engine, tenant_id, "day-2")["validation"]["grams_earlier_today"] == str(grams)
    assert len(sandbox_orders(account)) == 1

    with engine.begin() as conn:  # the POS's birth date wins over the one the caller sends
        conn.execute(sa.update(customers).where(customers.c.tenant_id == tenant_id, customers.c.customer_id == customer)
                     .values(birth_date=dt.date.today().replace(year=dt.date.today().year - 18)))
    lied = client.post(url, json=order("day-3", customer, [(product_id, 1)]), headers=auth)
    assert lied.status_code == 422 and lied.json()["type"].endswith("/under-age")


def test_orders_need_the_storefronts_own_key_and_one_order_ref_is_one_order(sandbox, client, engine, warehouse, tenant_id):
    account, auth = open_storefront(sandbox, engine, warehouse, tenant_id, "blaze")
    other = f"t-{uuid.uuid4().hex[:10]}"
    _, other_auth = open_storefront(sandbox, engine, warehouse, other, "blaze", products_n=5)
    product_id, _ = in_stock(engine, tenant_id, weighed=False)
    body = order("ref-1", a_customer(engine, tenant_id), [(product_id, 1)])
    url = f"/shops/{tenant_id}/pos/orders"
    assert client.post(url, json=body).status_code == 401
    assert client.post(url, json=body, headers=other_auth).status_code == 401
    assert client.post(url, json=body, headers=auth).status_code == 201
    changed = {**body, "items": [{"product_id": product_id, "quantity": 2}]}
    reused = client.post(url, json=changed, headers=auth)
    assert reused.status_code == 409 and reused.json()["type"].endswith("/order-ref-reused")
    assert client.get(f"{url}/ref-1", headers=other_auth).status_code == 401
    assert client.get(f"{url}/nope", headers=auth).status_code == 404
    assert len(sandbox_orders(account)) == 1


def test_without_a_key_nothing_is_said_about_the_storefronts_connections(sandbox, client, engine, warehouse, tenant_id):
    _, auth = open_storefront(sandbox, engine, warehouse, tenant_id, "blaze")
    product_id, _ = in_stock(engine, tenant_id, weighed=False)
    body = order("ref-probe", a_customer(engine, tenant_id), [(product_id, 1)])
    url = f"/shops/{tenant_id}/pos/orders"
    for provider in (None, "blaze", "treez"):  # connected or not: the same 401
        probe = client.post(url, json={**body, "provider": provider})
        assert probe.status_code == 401 and probe.json()["type"].endswith("/unauthorized")
    unknown = client.post(url, json={**body, "provider": "stripe"}, headers=auth)
    assert unknown.status_code == 422  # not a POS orders can go to


class _Garbled(httpx.BaseTransport):
    """The POS takes the order, but what comes back is a proxy's page, not its JSON."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/orders"):
            response.read()
            return httpx.Response(200, content=b"<html>OK</html>", request=request)
        return response


class _GarbledClients(PosClientsResource):
    def client_for(self, connection):
        client = super().client_for(connection)
        client.session.client._transport = _Garbled(client.session.client._transport)
        return client


def test_an_answer_that_cannot_be_read_leaves_the_order_in_doubt_never_placed_twice(sandbox, client, engine,
                                                                                      warehouse, tenant_id):
    from commerce.pos_orders import PosOrderService

    account, auth = open_storefront(sandbox, engine, warehouse, tenant_id, "blaze")
    product_id, _ = in_stock(engine, tenant_id, weighed=False)
    body = order("ref-garbled", a_customer(engine, tenant_id), [(product_id, 1)])
    before = getattr(client.app.state, "pos_orders", None)
    client.app.state.pos_orders = PosOrderService(engine, _GarbledClients(timeout_s=10, max_attempts=3,
                                                                          backoff_base_s=0.01))
    try:
        first = client.post(f"/shops/{tenant_id}/pos/orders", json=body, headers=auth)
        assert first.status_code == 502 and first.json()["type"].endswith("/pos-unconfirmed")
        assert stored(engine, tenant_id, "ref-garbled")["status"] == "unconfirmed"  # counts against the daily limit
        again = client.post(f"/shops/{tenant_id}/pos/orders", json=body, headers=auth)
        assert again.status_code == 409 and again.json()["type"].endswith("/order-in-doubt")
    finally:
        client.app.state.pos_orders = before
    assert len(sandbox_orders(account)) == 1


def test_portaus_payment_intent_created_once_per_reference(sandbox, client, engine, warehouse, tenant_id):
    account, auth = open_storefront(sandbox, engine, warehouse, tenant_id, "portaus")
    product_id, _ = in_stock(engine, tenant_id, minimum=3, weighed=False)
    p = products.c
    with engine.connect() as conn:
        price = conn.execute(sa.select(p.price).where(p.tenant_id == tenant_id, p.product_id == product_id)).scalar()
        branch = conn.execute(sa.text("SELECT branch_number FROM saq_branches WHERE tenant_id = :t ORDER BY 1"),
                              {"t": tenant_id}).scalar()
    url = f"/shops/{tenant_id}/portaus/payment-intents"
    body = {"reference": "saq-1001", "items": [{"product_id": product_id, "quantity": 3}], "branch": branch,
            "customer": "C3001"}
    first = client.post(url, json=body, headers=auth)
    assert first.status_code == 201, first.text
    intent = first.json()
    assert Decimal(str(intent["amount"])) == price * 3 and intent["currency"] == "CAD"
    assert intent["client_secret"] and intent["status"] == "requires_payment_method"
    again = client.post(url, json=body, headers=auth)
    assert again.status_code == 200 and again.json()["intent_id"] == intent["intent_id"]
    assert again.json()["client_secret"] is None
    key = account.credentials["api_key"]
    at_portaus = httpx.get(f"{sandbox.url}/_sandbox/portaus/tenants/{key}/payment-intents").json()
    assert [(i["reference"], i["amount"], i["branch"]) for i in at_portaus] == [("saq-1001", int(price * 300), branch)]
    t = portaus_payment_intents.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(portaus_payment_intents).where(t.tenant_id == tenant_id)).mappings().all()
    assert len(rows) == 1 and "clientSecret" not in rows[0]["raw"]
    other = client.post(url, json={**body, "items": [{"product_id": product_id, "quantity": 1}]}, headers=auth)
    assert other.status_code == 409
    wrong_branch = client.post(url, json={**body, "reference": "saq-1002", "branch": "99999"}, headers=auth)
    assert wrong_branch.status_code == 422 and wrong_branch.json()["type"].endswith("/unknown-branch")


def test_a_different_payment_racing_for_the_same_reference_is_refused(sandbox, client, engine, warehouse, tenant_id,
                                                                      monkeypatch):
    import commerce.pos_orders as service

    _, auth = open_storefront(sandbox, engine, warehouse, tenant_id, "portaus")
    product_id, _ = in_stock(engine, tenant_id, minimum=3, weighed=False)
    real = service.create_payment_intent

    def twin_first(client_, reference, *args, **kwargs):  # another request for another payment lands meanwhile
        intent = real(client_, reference, *args, **kwargs)
        with engine.begin() as conn:
            conn.execute(sa.insert(portaus_payment_intents).values(
                tenant_id=tenant_id, reference=reference, intent_id=intent["id"], status=intent["status"],
                amount=Decimal(1), currency="CAD", raw={}, request_hash="another payment"))
        return intent

    monkeypatch.setattr(service, "create_payment_intent", twin_first)
    raced = client.post(f"/shops/{tenant_id}/portaus/payment-intents", headers=auth,
                        json={"reference": "saq-race", "items": [{"product_id": product_id, "quantity": 1}]})
    assert raced.status_code == 409 and raced.json()["type"].endswith("/reference-reused")
    assert "client_secret" not in raced.text


def test_weight_tracked_stock_counts_whole_packages(engine, tenant_id):
    """Stock held in grams is offered as packages of the product's net weight."""
    from commerce.pos_orders import load_stock
    from warehouse.upsert import upsert

    product = {"tenant_id": tenant_id, "source": "treez", "product_id": "p1", "name": "Blue Dream 3.5g",
               "source_name": "BLUE DREAM 3.5G", "category": "cannabis/flower", "categories": ["cannabis/flower"],
               "effects": [], "flavors": [], "cannabinoids": {}, "currency": "USD", "status": "active",
               "attributes": {}, "weight_g": Decimal("3.5")}
    stock = {"tenant_id": tenant_id, "source": "treez", "location_id": "l1", "product_id": "p1", "lot_id": "",
             "tracking": "weight", "quantity": Decimal("10"), "quantity_unit": "g", "min_quantity": Decimal("1"),
             "increment": Decimal("0.5"), "available": True, "low_stock_threshold": Decimal("5"), "low_stock": False,
             "quantity_capped": False}
    with engine.begin() as conn:
        upsert(conn, products, [product])
        upsert(conn, inventory, [stock])
        assert load_stock(conn, tenant_id, "treez", ["p1"]) == {"l1": {"p1": (Decimal(2), False)}}


def test_dutchie_orders_need_the_consumer_key_and_without_it_nothing_is_sent(sandbox, client, engine, warehouse,
                                                                            tenant_id):
    account, auth = open_storefront(sandbox, engine, warehouse, tenant_id, "dutchie")
    without = {k: v for k, v in account.credentials.items() if k != "consumer_key"}
    with engine.begin() as conn:
        set_connection(conn, tenant_id, "dutchie", account.base_url, {**without, "orders_api_key": auth["Authorization"][7:]},
                       account.options)
    product_id, _ = in_stock(engine, tenant_id, weighed=False)
    refused = client.post(f"/shops/{tenant_id}/pos/orders", json=order("no-ck", a_customer(engine, tenant_id),
                                                                       [(product_id, 1)]), headers=auth)
    assert refused.status_code == 503 and refused.json()["type"].endswith("/pos-not-configured")
    assert "consumer_key" in refused.json()["detail"]
    assert sandbox_orders(account) == []  # not sent at all
    assert stored(engine, tenant_id, "no-ck")["status"] == "failed"


def test_a_dutchie_submit_whose_answer_is_lost_is_in_doubt_and_reaches_the_pos_once(sandbox, client, engine,
                                                                                   warehouse, tenant_id):
    import time

    from commerce.pos_orders import PosOrderService

    account, auth = open_storefront(sandbox, engine, warehouse, tenant_id, "dutchie")
    product_id, _ = in_stock(engine, tenant_id, weighed=False)
    body = order("slow-1", a_customer(engine, tenant_id), [(product_id, 1)])
    httpx.put(f"{sandbox.url}{account.control}/preorder", json={"delay_ms": 1000}, timeout=10).raise_for_status()
    before = getattr(client.app.state, "pos_orders", None)
    client.app.state.pos_orders = PosOrderService(engine, PosClientsResource(timeout_s=0.3, max_attempts=3,
                                                                             backoff_base_s=0.01))
    try:
        lost = client.post(f"/shops/{tenant_id}/pos/orders", json=body, headers=auth)
    finally:
        client.app.state.pos_orders = before
    assert lost.status_code == 502 and lost.json()["type"].endswith("/pos-unconfirmed")
    assert stored(engine, tenant_id, "slow-1")["status"] == "unconfirmed"  # in doubt, counted, not "failed"
    again = client.post(f"/shops/{tenant_id}/pos/orders", json=body, headers=auth)
    assert again.status_code == 409 and again.json()["type"].endswith("/order-in-doubt")
    time.sleep(1.2)
    received = sandbox_orders(account)  # three submits sent, each with ConsumerKey + idempotencyKey: one order
    assert len(received) == 1 and received[0]["consumerKey"] == account.credentials["consumer_key"]
    assert received[0]["request"]["idempotencyKey"] == f"{tenant_id}:slow-1"


def test_a_dutchie_answer_as_an_object_is_read_for_its_order_id(sandbox, client, engine, warehouse, tenant_id):
    account, auth = open_storefront(sandbox, engine, warehouse, tenant_id, "dutchie")
    httpx.put(f"{sandbox.url}{account.control}/preorder", json={"answer": "object"}, timeout=10).raise_for_status()
    product_id, _ = in_stock(engine, tenant_id, weighed=False)
    placed = client.post(f"/shops/{tenant_id}/pos/orders", json=order("obj-1", a_customer(engine, tenant_id),
                                                                      [(product_id, 1)]), headers=auth)
    assert placed.status_code == 201, placed.text
    [got] = sandbox_orders(account)
    assert placed.json()["provider_order_id"] == str(got["orderId"])  # not the text of the object
    assert stored(engine, tenant_id, "obj-1")["confirmation"]["transactionId"] == 3_000_000 + got["orderId"]


def test_dutchie_order_rules_medical_only_medical_id_expiry_flower_equivalent_held_stock_and_price(
        sandbox, client, engine, warehouse, tenant_id):
    account, auth = open_storefront(sandbox, engine, warehouse, tenant_id, "dutchie", products_n=60, customers_n=40,
                                    variety=True)
    url = f"/shops/{tenant_id}/pos/orders"
    today = dt.date.today()
    with engine.connect() as conn:
        people = conn.execute(sa.select(customers).where(customers.c.tenant_id == tenant_id,
                                                         customers.c.deleted_at.is_(None))).mappings().all()
        catalog = {r["product_id"]: r for r in conn.execute(sa.select(products).where(
            products.c.tenant_id == tenant_id)).mappings()}
        stock = conn.execute(sa.select(inventory).where(inventory.c.tenant_id == tenant_id,
                                                        inventory.c.deleted_at.is_(None))).mappings().all()
    sellable = defaultdict(Decimal)
    held = defaultdict(Decimal)
    for r in stock:
        (sellable if r["available"] else held)[r["product_id"]] += r["quantity"]
    medical = next(c["customer_id"] for c in people if c["medical_id"] and c["medical_id_expires_on"] > today)
    expired = next(c["customer_id"] for c in people if c["medical_id"] and c["medical_id_expires_on"] < today)
    recreational = next(c["customer_id"] for c in people if not c["medical_id"])
    medical_only = next(p for p, r in catalog.items() if r["attributes"].get("medical_only") and sellable[p] >= 1)

    refused = client.post(url, json=order("mo-rec", recreational, [(medical_only, 1)]), headers=auth)
    assert refused.status_code == 422 and refused.json()["type"].endswith("/medical-only")
    lapsed = client.post(url, json=order("mo-expired", expired, [(medical_only, 1)]), headers=auth)
    assert lapsed.status_code == 422 and lapsed.json()["type"].endswith("/medical-only")
    validation = stored(engine, tenant_id, "mo-expired")["validation"]
    assert validation["customer_type"] == "recreational" and validation["medical_id_expired"] is True
    assert validation["daily_limit_g"] == "28.35"  # the recreational limit, not the medical 70.87
    allowed = client.post(url, json=order("mo-med", medical, [(medical_only, 1)]), headers=auth)
    assert allowed.status_code == 201, allowed.text

    concentrate = next(p for p, r in catalog.items() if r["attributes"].get("rec_flower_equivalent_g")
                       and not r["attributes"].get("medical_only") and sellable[p] >= 1)
    attrs = catalog[concentrate]["attributes"]
    counted = client.post(url, json=order("fe-rec", recreational, [(concentrate, 1)]), headers=auth)
    assert counted.status_code == 201, counted.text
    assert Decimal(stored(engine, tenant_id, "fe-rec")["validation"]["grams"]) == Decimal(attrs["rec_flower_equivalent_g"])
    assert Decimal(attrs["rec_flower_equivalent_g"]) != catalog[concentrate]["weight_g"]

    quarantined = next(p for p in held if sellable[p] >= 1 and not catalog[p]["attributes"].get("medical_only")
                       and catalog[p]["price"] is not None)
    whole = int(sellable[quarantined] + held[quarantined])
    short = client.post(url, json=order("held", recreational, [(quarantined, whole)]), headers=auth)
    assert short.status_code == 422 and short.json()["type"].endswith("/out-of-stock")
    assert f"{sellable[quarantined]:f} available" in short.json()["detail"]

    tiered = next(p for p, r in catalog.items() if r["attributes"].get("pricing_tiers") and sellable[p] >= 1
                  and not r["attributes"].get("medical_only"))
    assert catalog[tiered]["price"] is not None  # priced from its first tier
    with engine.begin() as conn:
        conn.execute(sa.update(products).where(products.c.tenant_id == tenant_id, products.c.product_id == tiered)
                     .values(price=None))
    unpriced = client.post(url, json=order("no-price", recreational, [(tiered, 1)]), headers=auth)
    assert unpriced.status_code == 422 and unpriced.json()["type"].endswith("/unpriced-product")
