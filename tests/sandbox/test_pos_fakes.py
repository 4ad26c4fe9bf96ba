"""The POS fakes over real HTTP: auth, paging to the end, incremental reads, 429s, webhooks,
the golden product in six native dialects, and a lazily generated 50 x 5,000 catalog."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest

from sandbox.pos_catalog import Store

GOLDEN = ("Cresco", "Blue Dream", 3.5, "flower", "hybrid", 22.5, 0.1, 4500)
TREEZ = "/treez/v2.0/dispensary/partnerdemo"
DUTCHIE = {"Authorization": "Basic " + base64.b64encode(b"dutchie-demo-key:").decode()}
BLAZE = {"x-api-key": "blaze-demo-partner", "Authorization": "blaze-demo-dev"}
FLOWHUB = {"clientId": "flowhub-demo-client", "key": "flowhub-demo-key"}
FH_LOC = "b9d2a82b-9c98-4f18-95f3-000000000001"
SHOP = "/shopify/storehouse-demo/admin/api/2024-10"
SHOPIFY = {"X-Shopify-Access-Token": "shpat_storehouse_demo_token"}
PORTAUS_SECRET = "portaus-demo-jwt-secret-0000000000"


class Receiver:
    """A local webhook endpoint answering with queued status codes (then 200)."""

    def __init__(self, statuses: tuple[int, ...] = ()) -> None:
        self.hits: list[tuple[dict, bytes]] = []
        self.statuses = list(statuses)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.hits.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.statuses.pop(0) if outer.statuses else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def wait(self, n: int, timeout: float = 10.0) -> list[tuple[dict, bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.hits) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.hits) >= n, f"expected {n} webhook calls, got {len(self.hits)}"
        return self.hits

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def http(sandbox_reset):
    with httpx.Client(base_url=sandbox_reset.url, timeout=10) as client:
        yield client


def treez_token(http: httpx.Client, apikey: str = "treez-demo-apikey") -> httpx.Response:
    return http.post(f"{TREEZ}/config/api/gettokens", data={"client_id": "treez-demo-client", "apikey": apikey})


def treez_headers(http: httpx.Client) -> dict:
    return {"authorization": treez_token(http).json()["access_token"], "client_id": "treez-demo-client"}


def cova_token(http: httpx.Client, password: str = "cova-demo-password") -> httpx.Response:
    return http.post("/cova/v1/oauth2/token", data={
        "grant_type": "password", "username": "demo@storehouse.test", "password": password,
        "client_id": "cova-demo-client", "client_secret": "cova-demo-secret"})


def cova_headers(http: httpx.Client) -> dict:
    r = cova_token(http)
    assert r.status_code == 200 and r.json()["expires_in"] == 43200
    return {"Authorization": "Bearer " + r.json()["access_token"]}


def portaus_headers(key: str = "portaus-demo-key", secret: str = PORTAUS_SECRET) -> dict:
    return {"apikey": jwt.encode({"API_KEY": key}, secret, algorithm="HS256")}


def is_golden(sku: str) -> bool:
    return sku == "CRS-BD-0035"


COVA_BODY = {"LocationId": 201, "IncludeAvailability": True, "IncludePackageDetails": True, "IncludePricing": True,
             "IncludeProductSpecifications": True, "Skip": 0, "Top": 500}


def test_treez(http):
    bad = treez_token(http, apikey="nope")
    assert bad.status_code == 401 and bad.json()["resultCode"] == "FAIL"
    h = treez_headers(http)
    bearer = {**h, "authorization": "Bearer " + h["authorization"]}
    assert http.get(f"{TREEZ}/product/product_list", headers=bearer).status_code == 401
    http.put("/_sandbox/treez/limits", json={"tps": 1000})
    seen, page, total = [], 1, None
    while total is None or len(seen) < total:
        r = http.get(f"{TREEZ}/product/product_list", params={"page": page, "pagesize": 37}, headers=h)
        data = r.json()["data"]
        total = data["total_count"]
        assert data["page_count"] == len(data["product_list"]) > 0
        seen += data["product_list"]
        page += 1
    names = [p["product_configurable_fields"]["name"] for p in seen]
    assert total == 200 and len({p["product_id"] for p in seen}) == 200 and names == sorted(names, key=str.lower)
    assert http.get(f"{TREEZ}/product/product_list", params={"pagesize": 1001}, headers=h).status_code == 400
    golden = next(p for p in seen if is_golden(p["product_barcodes"][0]["sku"]))
    assert golden["product_configurable_fields"]["name"] == "BLUE DREAM 3.5G"
    stock = f"/_sandbox/treez/dispensaries/partnerdemo/products/{golden['product_id']}/stock"
    assert http.post(stock, json={"quantity": 77}).json()["sellable_quantity"] == 30  # Treez caps it
    after, people, page = "2024-01-01T00:00:00.000-07:00", [], 1
    while batch := http.get(f"{TREEZ}/customer/lastUpdated/after/{after}/page/{page}/pagesize/7",
                            headers=h).json()["data"]:
        people += batch
        page += 1
    stamps = [c["last_update"] for c in people]
    assert stamps and min(stamps) > "2024-01-01T00" and stamps == sorted(stamps, reverse=True)
    ticket = http.post(f"{TREEZ}/ticket/detailticket", headers=h,
                       json={"type": "PICKUP", "items": [{"product_id": golden["product_id"], "quantity": 2}]})
    assert ticket.json()["data"]["total"] == 90.0
    assert len(http.get("/_sandbox/treez/dispensaries/partnerdemo/orders").json()) == 1
    http.put("/_sandbox/treez/limits", json={"tps": 3})
    limited = [r for r in (http.get(f"{TREEZ}/product/product_list", params={"pagesize": 1}, headers=h)
                           for _ in range(6)) if r.status_code == 429]
    assert limited and limited[0].json()["resultReason"] == "OVER LIMIT"


def test_treez_unsigned_webhook(http):
    receiver = Receiver()
    try:
        http.put("/_sandbox/treez/dispensaries/partnerdemo/webhook", json={"url": receiver.url, "secret": "shh"})
        listed = http.get(f"{TREEZ}/product/product_list", params={"pagesize": 1000}, headers=treez_headers(http))
        golden = next(p for p in listed.json()["data"]["product_list"] if is_golden(p["product_barcodes"][0]["sku"]))
        http.delete(f"/_sandbox/treez/dispensaries/partnerdemo/products/{golden['product_id']}")
        headers, body = receiver.wait(1)[0]
        assert headers["authorization"] == "shh" and b'"product_status": "DEACTIVATED"' in body
    finally:
        receiver.close()


def _deliveries(http: httpx.Client, system: str) -> list[dict]:
    """The fake's delivery log once every delivery has settled (the sender records after the reply)."""
    deadline = time.monotonic() + 10
    while True:
        log = http.get(f"/_sandbox/{system}/webhooks").json()
        if all(d["status"] != "pending" for d in log) or time.monotonic() > deadline:
            return log
        time.sleep(0.02)


def _golden_ids(http: httpx.Client) -> dict[str, str]:
    blaze = http.get("/blaze/api/v1/partner/products/sku/CRS-BD-0035", headers=BLAZE).json()
    flowhub = http.get(f"/flowhub/v0/locations/{FH_LOC}/inventory", headers=FLOWHUB).json()["data"]
    cova = http.post("/cova/dataplatform/v1/companies/12345/DetailedProductData", json={**COVA_BODY, "Top": 1},
                     headers=cova_headers(http)).json()["Products"]
    dutchie = http.get("/dutchie/products", headers=DUTCHIE).json()
    return {"dutchie": next(str(p["productId"]) for p in dutchie if is_golden(p["sku"])), "blaze": blaze["id"],
            "flowhub": next(r["productId"] for r in flowhub if is_golden(r["sku"])), "cova": cova[0]["ProductId"]}


@pytest.mark.parametrize("system, hook, stock, secret_header", [
    ("dutchie", "locations/1001/webhook", "locations/1001/products/{id}/stock", "authorization"),
    ("blaze", "shops/5f0c0ffee0000000000000a1/webhook", "shops/5f0c0ffee0000000000000a1/products/{id}/stock",
     "authorization"),
    ("flowhub", "clients/flowhub-demo-client/webhook", f"locations/{FH_LOC}/products/{{id}}/stock", "key"),
    ("cova", "companies/12345/webhook", "locations/201/products/{id}/stock", "authorization"),
], ids=["dutchie", "blaze", "flowhub", "cova"])
def test_pos_webhooks_on_stock_change(http, system, hook, stock, secret_header):
    receiver = Receiver()
    try:
        http.put(f"/_sandbox/{system}/{hook}", json={"url": receiver.url, "secret": "s3cret"})
        product_id = _golden_ids(http)[system]
        assert http.post(f"/_sandbox/{system}/" + stock.format(id=product_id), json={"quantity": 21}).status_code == 200
        headers, body = receiver.wait(1)[0]
        assert headers[secret_header] == "s3cret" and b"CRS-BD-0035" in body
        assert _deliveries(http, system)[0]["status"] == "delivered"
    finally:
        receiver.close()


def test_dutchie(http):
    assert http.get("/dutchie/whoami", headers=DUTCHIE).json()["locationId"] == 1001
    bad = http.get("/dutchie/products", headers={"Authorization": "Basic " + base64.b64encode(b"wrong:").decode()})
    assert bad.status_code == 401 and "WWW-Authenticate" in bad.headers
    products = http.get("/dutchie/products", headers=DUTCHIE).json()
    assert len(products) == 200
    bookmark = max(p["lastModifiedDateUTC"] for p in products)
    golden = next(p for p in products if is_golden(p["sku"]))
    http.post(f"/_sandbox/dutchie/locations/1001/products/{golden['productId']}/stock", json={"quantity": 30})
    changed = http.get("/dutchie/products", params={"fromLastModifiedDateUTC": bookmark}, headers=DUTCHIE).json()
    assert [p["productId"] for p in changed] == [golden["productId"]]
    victim = products[7]["productId"]
    http.delete(f"/_sandbox/dutchie/locations/1001/products/{victim}", params={"hard": "true"})
    assert victim not in {p["productId"] for p in http.get("/dutchie/products", headers=DUTCHIE).json()}
    inventory = http.get("/dutchie/inventory", params={"includeLabResults": "true"}, headers=DUTCHIE).json()
    batches = [i for i in inventory if is_golden(i["sku"])]
    assert {(b["batchName"], b["expirationDate"][:10]) for b in batches} == {
        ("BD-2406-A", "2027-06-30"), ("BD-2409-B", "2027-09-30")}
    assert sum(b["quantityAvailable"] for b in batches) == 30 and batches[0]["labResults"][0]["labResultUnit"] == "%"
    people, page = [], 0
    while chunk := http.get("/dutchie/customer/customers-paginated", headers=DUTCHIE,
                            params={"PageNumber": page, "PageSize": 15}).json():
        people += chunk
        page += 1
    assert len(people) == 40 and page == 3
    too_big = http.get("/dutchie/customer/customers-paginated", params={"PageSize": 10001}, headers=DUTCHIE)
    assert too_big.status_code == 400 and too_big.json()["propertyErrors"][0]["propertyName"] == "PageSize"
    order = {"customerId": people[0]["customerId"], "idempotencyKey": "k1",
             "items": [{"productId": golden["productId"], "quantity": 1}]}
    keyed = {**DUTCHIE, "ConsumerKey": "storehouse"}
    first = http.post("/dutchie/preorder/submit", json=order, headers=keyed).json()
    assert http.post("/dutchie/preorder/submit", json=order, headers=keyed).json() == first
    assert len(http.get("/_sandbox/dutchie/locations/1001/orders").json()) == 1
    for headers, body in ((DUTCHIE, order), (keyed, {**order, "idempotencyKey": None})):  # either alone: no dedup
        ids = {http.post("/dutchie/preorder/submit", json=body, headers=headers).json() for _ in range(2)}
        assert len(ids) == 2
    assert len(http.get("/_sandbox/dutchie/locations/1001/orders").json()) == 5
    http.put("/_sandbox/dutchie/limits", json={"inventory": 2})
    codes = [http.get("/dutchie/inventory", headers=DUTCHIE) for _ in range(4)]
    assert codes[-1].status_code == 429 and codes[-1].text.startswith("API calls quota exceeded!")
    assert int(codes[-1].headers["Retry-After"]) > 0


def test_blaze(http):
    products = "/blaze/api/v1/partner/products"
    assert http.get(products, headers={"Authorization": "blaze-demo-dev"}).status_code == 403
    assert http.get(products, headers={**BLAZE, "Authorization": "nope"}).status_code == 401
    no_members = {**BLAZE, "Authorization": "blaze-demo-dev-noperm"}
    assert http.get("/blaze/api/v1/partner/members", headers=no_members).status_code == 403
    values, start = [], 0
    while True:
        page = http.get(products, params={"start": start, "limit": 64}, headers=BLAZE).json()
        values += page["values"]
        start += page["limit"]
        if start >= page["total"]:
            break
    assert len({v["id"] for v in values}) == 200
    bookmark = max(v["modified"] for v in values)
    golden, victim = next(v for v in values if is_golden(v["sku"])), values[5]
    http.post(f"/_sandbox/blaze/shops/5f0c0ffee0000000000000a1/products/{golden['id']}/stock", json={"quantity": 3})
    http.delete(f"/_sandbox/blaze/shops/5f0c0ffee0000000000000a1/products/{victim['id']}", params={"hard": "true"})
    window = {"startDate": bookmark + 1, "endDate": int(time.time() * 1000) + 5000}
    modified = http.get(f"{products}/modified", params=window, headers=BLAZE).json()["values"]
    assert [(m["id"], m["deleted"]) for m in modified] == [(golden["id"], False), (victim["id"], True)]
    members = http.get("/blaze/api/v1/partner/members", params={"start": 0, "limit": 500}, headers=BLAZE).json()
    assert members["total"] == 40 == len(members["values"])
    order = http.post("/blaze/api/v1/partner/orders", headers=BLAZE, json={
        "memberId": members["values"][0]["id"], "items": [{"productId": golden["id"], "quantity": 2}]})
    assert order.status_code == 201 and order.json()["total"] == 90.0
    http.put("/_sandbox/blaze/limits", json={"calls": 2})
    codes = [http.get(products, headers=BLAZE) for _ in range(3)]
    assert codes[-1].status_code == 429 and codes[-1].json() == {"message": "Too Many Requests"}


def test_flowhub(http):
    assert http.get("/flowhub/v0/clientsLocations", headers={**FLOWHUB, "key": "bad"}).status_code == 401
    locations = http.get("/flowhub/v0/clientsLocations", headers=FLOWHUB).json()["data"]
    assert locations[0]["locationId"] == FH_LOC
    rows = http.get(f"/flowhub/v0/locations/{FH_LOC}/inventory", headers=FLOWHUB).json()["data"]
    bookmark = max(r["productUpdatedAt"] for r in rows)
    golden = [r for r in rows if is_golden(r["sku"])]
    assert sorted(r["quantity"] for r in golden) == [8, 16]
    assert {r["expirationDate"] for r in golden} == {"2027-06-30", "2027-09-30"}
    http.post(f"/_sandbox/flowhub/locations/{FH_LOC}/products/{golden[0]['productId']}/stock", json={"quantity": 0})
    nonzero = http.get(f"/flowhub/v0/locations/{FH_LOC}/inventoryNonZero", headers=FLOWHUB).json()["data"]
    assert all(r["quantity"] > 0 for r in nonzero) and not any(is_golden(r["sku"]) for r in nonzero)
    snapshot = http.get("/flowhub/v0/inventory", headers=FLOWHUB).json()["data"]
    assert {r["sku"] for r in snapshot if r["productUpdatedAt"] > bookmark} == {"CRS-BD-0035"}
    people, page = [], 1
    while chunk := http.get("/flowhub/v1/customers/", params={"page": page, "page_size": 9},
                            headers=FLOWHUB).json()["data"]:
        people += chunk
        page += 1
    assert len(people) == 40
    cutoff = sorted(p["createdAt"] for p in people)[29]
    recent = http.get("/flowhub/v1/customers/", params={"created_after": cutoff, "page_size": 100}, headers=FLOWHUB)
    assert len(recent.json()["data"]) == 10
    other = next(r for r in rows if not is_golden(r["sku"]))
    made = http.post("/flowhub/order-ahead/v0/create", headers=FLOWHUB, json={
        "locationId": FH_LOC, "items": [{"productId": other["productId"], "quantity": 1}]}).json()["data"]
    status = http.get(f"/flowhub/order-ahead/v0/orderStatus/{made['orderId']}", headers=FLOWHUB).json()
    assert status["data"]["status"] == "pending"
    http.put("/_sandbox/flowhub/limits", json={"calls": 1})
    codes = [http.get("/flowhub/v0/clientsLocations", headers=FLOWHUB) for _ in range(2)]
    assert codes[-1].status_code == 429 and codes[-1].json()["status"] == 429 and "Retry-After" in codes[-1].headers


def test_cova(http):
    bad = cova_token(http, password="wrong")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    h = cova_headers(http)
    url = "/cova/dataplatform/v1/companies/12345/DetailedProductData"
    assert http.post(url, json=COVA_BODY, headers={"Authorization": "Bearer nope"}).status_code == 401
    products, skip = [], 0
    while True:
        r = http.post(url, json={**COVA_BODY, "Skip": skip, "Top": 45}, headers=h)
        assert r.headers["COVA-APIM-RateLimit-Limit"] == "100"
        products += r.json()["Products"]
        skip += 45
        if len(r.json()["Products"]) < 45:
            break
    assert len({p["ProductId"] for p in products}) == 200
    bookmark = max(p["UpdatedDateUtc"] for p in products)
    golden = next(p for p in products if is_golden(p["Sku"]))
    http.post(f"/_sandbox/cova/locations/201/products/{golden['ProductId']}/stock", json={"quantity": 11})
    changed = http.post(f"{url}/UpdatedAsOf/{bookmark}", json=COVA_BODY, headers=h).json()["Products"]
    assert [p["ProductId"] for p in changed] == [golden["ProductId"]]
    assert changed[0]["Availability"][0]["InStockQuantity"] == 11
    by_id = http.post(f"{url}/ByProductIdList", json={**COVA_BODY, "ProductIds": [golden["ProductId"]]}, headers=h)
    assert by_id.json()["Products"][0]["Name"] == "Cresco - Blue Dream (3.5g)"
    people = http.get("/cova/customers/v1/Companies(12345)/CustomerFull", params={"$skip": 30, "$top": 100}, headers=h)
    assert len(people.json()) == 10
    intake = "/cova/covaorderintake/v1/TIPCovaOrder(web-1)"
    assert http.put(intake, headers=h, json={"CompanyId": 12345, "LocationId": 201}).status_code == 400
    http.put(intake, headers=h, json={"CompanyId": 12345, "IntegratorId": "storehouse"})
    assert [o["OrderId"] for o in http.get("/_sandbox/cova/companies/12345/orders").json()] == ["web-1"]
    http.put("/_sandbox/cova/limits", json={"calls": 1})
    codes = [http.post(url, json=COVA_BODY, headers=h) for _ in range(2)]
    assert codes[-1].status_code == 429 and codes[-1].json()["statusCode"] == 429
    assert codes[-1].headers["COVA-APIM-RateLimit-Limit"] == "1" and "Retry-After" in codes[-1].headers


def _next_link(response: httpx.Response) -> str | None:
    match = re.search(r'<([^>]+)>; rel="next"', response.headers.get("Link", ""))
    return match.group(1) if match else None


def test_shopify(http):
    assert http.get(f"{SHOP}/products.json", headers={"X-Shopify-Access-Token": "bad"}).status_code == 401
    r = http.get(f"{SHOP}/products.json", params={"limit": 10}, headers=SHOPIFY)
    assert r.headers["X-Shopify-Shop-Api-Call-Limit"].endswith("/40") and 'rel="previous"' not in r.headers["Link"]
    products = r.json()["products"]
    while url := _next_link(r):
        r = http.get(url, headers=SHOPIFY)
        products += r.json()["products"]
    assert len({p["id"] for p in products}) == 120 and 'rel="previous"' in r.headers["Link"]
    assert http.get(f"{SHOP}/products.json", params={"page_info": "garbage"}, headers=SHOPIFY).status_code == 400
    single = http.get("/shopify/storehouse-outlet/admin/api/2024-10/products.json", params={"limit": 250},
                      headers={"X-Shopify-Access-Token": "shpat_storehouse_outlet_token"})
    assert len(single.json()["products"]) == 30 and "Link" not in single.headers
    bookmark = max(p["updated_at"] for p in products)
    golden = next(p for p in products if is_golden(p["variants"][0]["sku"]))
    http.post(f"/_sandbox/shopify/shops/storehouse-demo/products/{golden['id']}/stock", json={"quantity": 9})
    fresh = http.get(f"{SHOP}/products.json", params={"updated_at_min": bookmark}, headers=SHOPIFY).json()["products"]
    assert golden["id"] in {p["id"] for p in fresh} and all(p["updated_at"] >= bookmark for p in fresh)
    assert http.get(f"{SHOP}/inventory_levels.json", headers=SHOPIFY).status_code == 422
    item = {"inventory_item_ids": golden["variants"][0]["inventory_item_id"]}
    levels = http.get(f"{SHOP}/inventory_levels.json", params=item, headers=SHOPIFY).json()["inventory_levels"]
    assert [lv["available"] for lv in levels] == [9]
    made = http.post(f"{SHOP}/orders.json", headers=SHOPIFY, json={"order": {
        "line_items": [{"variant_id": golden["variants"][0]["id"], "quantity": 2}],
        "inventory_behaviour": "decrement_obeying_policy"}})
    assert made.status_code == 201 and made.json()["order"]["total_price"] == "90.00"
    assert len(http.get(f"{SHOP}/orders.json", params={"status": "any"}, headers=SHOPIFY).json()["orders"]) == 1
    http.put("/_sandbox/shopify/limits", json={"bucket_size": 3, "leak_rate": 0.01})
    codes = [http.get(f"{SHOP}/locations.json", headers=SHOPIFY) for _ in range(4)]
    assert codes[-1].status_code == 429 and codes[-1].headers["Retry-After"] == "2.0"
    assert codes[-1].headers["X-Shopify-Shop-Api-Call-Limit"] == "3/3"


def test_shopify_webhooks_are_signed_and_retried(http):
    secret = "shpss_test_secret"
    receiver = Receiver(statuses=(500,))
    try:
        http.post("/_sandbox/shopify/shops/storehouse-demo/webhooks",
                  json={"address": receiver.url, "secret": secret, "topics": ["inventory_levels/update"]})
        product = http.get(f"{SHOP}/products.json", params={"limit": 1}, headers=SHOPIFY).json()["products"][0]
        http.post(f"/_sandbox/shopify/shops/storehouse-demo/products/{product['id']}/stock", json={"quantity": 4})
        (first_headers, first_body), (headers, body) = receiver.wait(2)[:2]
        expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
        assert hmac.compare_digest(headers["x-shopify-hmac-sha256"], expected)
        assert headers["x-shopify-topic"] == "inventory_levels/update"
        assert headers["x-shopify-shop-domain"] == "storehouse-demo.myshopify.com"
        assert first_headers["x-shopify-webhook-id"] == headers["x-shopify-webhook-id"] and first_body == body
        assert b'"available":4' in body
        delivery = _deliveries(http, "shopify")[0]
        assert delivery["responses"] == [500, 200] and delivery["status"] == "delivered"
    finally:
        receiver.close()


def test_portaus(http):
    assert http.get("/portaus/api/v1/saq-branches").status_code == 401
    forged = portaus_headers(secret="not-the-tenant-secret-000000000000")
    assert http.get("/portaus/api/v1/saq-branches", headers=forged).status_code == 401
    h = portaus_headers()
    assert http.get("/portaus/api/v1/saq-branches", headers=h).json()[0]["name"].startswith("SAQ")
    url = "/portaus/API/latest/admin/inventories/1/products"
    listed, page = [], 1
    while True:
        body = http.get(url, params={"limit": 40, "page": page}, headers=h).json()
        listed += body["list"]
        if page >= body["pages"]:
            break
        page += 1
    assert len({p["puid"] for p in listed}) == body["count"] == 150
    golden = listed[0]
    assert (golden["sku"], golden["volume"], golden["item"]["extraInfo"]["alcohol"], golden["pricing"]["price"]) == (
        "00369405", 750, "13.5", 17.95)
    http.post(f"/_sandbox/portaus/tenants/portaus-demo-key/products/{listed[42]['puid']}/stock", json={"quantity": 1})
    newest = http.get(url, params={"orderBy": "updatedAt", "direction": "DESC", "limit": 1}, headers=h).json()
    assert newest["list"][0]["puid"] == listed[42]["puid"] and newest["list"][0]["quantity"]["packaged"] == 1
    people = http.get("/portaus/API/v1/admin/customers", params={"limit": 100}, headers=h).json()
    assert people["count"] == 40 and people["list"][0]["contact"]["email"]
    intent = {"amount": 3590, "currency": "CAD", "customer": {"email": "a@example.com"}, "reference": "order-77"}
    created = http.post("/portaus/api/v1/payments/intents", json=intent, headers=h)
    again = http.post("/portaus/api/v1/payments/intents/", json=intent, headers=h)
    assert created.status_code == 201 and again.status_code == 200 and again.json()["id"] == created.json()["id"]
    assert http.post("/portaus/api/v1/payments/intents", json={**intent, "amount": 1}, headers=h).status_code == 409
    http.put("/_sandbox/faults/portaus", json={"fail_next_429": 1})
    limited = http.get("/portaus/api/v1/saq-branches", headers=h)
    assert limited.status_code == 429 and "Retry-After" in limited.headers


def _grams(value: float, unit: str) -> float:
    if unit == "oz":  # trade fractions: an eighth is sold as 3.5 g, not 3.54 g
        return {0.125: 3.5, 0.25: 7.0, 0.5: 14.0, 1.0: 28.0}.get(value, round(value * 28.3495, 2))
    return value


def _strain(text: str) -> str:
    text = text.lower()
    return "hybrid" if "dom" in text or "hybrid" in text else text


def test_golden_product_normalises_identically_across_six(http):
    """A small reference normaliser maps each fake's native golden row to the same tuple."""
    rows = {}
    listed = http.get(f"{TREEZ}/product/product_list", params={"pagesize": 1000}, headers=treez_headers(http))
    t = next(p for p in listed.json()["data"]["product_list"] if is_golden(p["product_barcodes"][0]["sku"]))
    f = t["product_configurable_fields"]
    labs = {lr["result_type"]: lr["amount"]["maximum_value"] for lr in t["lab_results"]}
    rows["treez"] = (f["brand"].title(), f["name"].rsplit(" ", 1)[0].title(), f["amount"], t["category_type"].lower(),
                     _strain(f["classification"]), labs["THC"], labs["CBD"], round(t["pricing"]["price_sell"] * 100))
    d = next(p for p in http.get("/dutchie/products", headers=DUTCHIE).json() if is_golden(p["sku"]))
    rows["dutchie"] = (d["brandName"], d["productName"].split(" | ")[0], d["netWeight"], d["category"].lower(),
                       _strain(d["strainType"]), d["thcContent"], d["cbdContent"], round(d["recPrice"] * 100))
    b = http.get("/blaze/api/v1/partner/products/sku/CRS-BD-0035", headers=BLAZE).json()
    eighths = {"HALF_GRAM": 0.5, "FULL_GRAM": 1.0, "EIGHTH": 3.5, "QUARTER": 7.0, "HALF": 14.0, "OUNCE": 28.0}
    rows["blaze"] = (b["brandName"], re.sub(r" \(.*\)$", "", b["name"]), eighths[b["weightPerUnit"]],
                     b["category"]["name"].lower().rstrip("s"), _strain(b["flowerType"]), b["thc"], b["cbd"],
                     round(b["unitPrice"] * 100))
    inventory = http.get(f"/flowhub/v0/locations/{FH_LOC}/inventory", headers=FLOWHUB).json()["data"]
    fh = next(r for r in inventory if is_golden(r["sku"]))
    m = re.fullmatch(r"(\w+) - (.+) \S+ \[(.+)\]", fh["productName"])
    cann = {c["name"]: c["upperRange"] for c in fh["cannabinoidInformation"] if c["unitOfMeasure"] == "%"}
    rows["flowhub"] = (m.group(3).title(), m.group(2), fh["productWeight"], m.group(1).lower(),
                       _strain(fh["speciesName"]), cann["thc"], cann["cbd"], fh["priceInMinorUnits"])
    cova = http.post("/cova/dataplatform/v1/companies/12345/DetailedProductData", json=COVA_BODY,
                     headers=cova_headers(http)).json()["Products"]
    c = next(p for p in cova if is_golden(p["Sku"]))
    spec = {fd["DisplayName"]: (fd["Value"], fd["Unit"]) for fd in c["Specifications"][0]["Fields"]}
    per_g = {"mg/g": 0.1, "%": 1.0}
    rows["cova"] = (c["Brand"], re.fullmatch(r".+ - (.+) \(.+\)", c["Name"]).group(1), float(spec["Net Weight"][0]),
                    "flower" if c["ClassificationName"] == "Dried Flower" else c["ClassificationName"].lower(),
                    _strain(spec["Strain Type"][0]), float(spec["THC Max"][0]) * per_g[spec["THC Max"][1]],
                    float(spec["CBD Max"][0]) * per_g[spec["CBD Max"][1]], round(c["Prices"][0]["RegularPrice"] * 100))
    shop = http.get(f"{SHOP}/products.json", params={"limit": 250}, headers=SHOPIFY).json()["products"]
    s = next(p for p in shop if is_golden(p["variants"][0]["sku"]))
    tags, v = dict(tag.split(": ", 1) for tag in s["tags"].split(", ") if ": " in tag), s["variants"][0]
    rows["shopify"] = (s["vendor"], s["title"], _grams(v["weight"], v["weight_unit"]), s["product_type"].lower(),
                       "hybrid" if "Hybrid" in s["tags"] else None, float(tags["THC"].rstrip("%")),
                       float(tags["CBD"].rstrip("%")), round(float(v["price"]) * 100))
    for system, row in rows.items():
        assert tuple(round(x, 3) if isinstance(x, float) else x for x in row) == GOLDEN, system
    # ...while on the wire the six really differ
    assert (f["name"], d["productName"], b["name"], fh["productName"], c["Name"]) == (
        "BLUE DREAM 3.5G", "Blue Dream | 3.5g", "Blue Dream (3.5g)", "FLOWER - Blue Dream 3.5g [CRESCO]",
        "Cresco - Blue Dream (3.5g)")
    assert (v["weight"], v["weight_unit"], fh["priceInMinorUnits"], spec["THC Max"]) == (
        0.125, "oz", 4500, ("225", "mg/g"))


def test_catalog_of_50_stores_of_5000_is_lazy(http):
    tracemalloc.start()
    started = time.perf_counter()
    stores = [Store(f"scale:{k}", 5000, 1000) for k in range(50)]
    for s in stores:
        assert is_golden(s.listing(0).p.sku) and s.listing(4999).p.index == 4999
        changed = s.set_quantity(1234, 5)
        assert s.updated_since(changed.updated_ms - 1) == [1234]
    whole = [stores[0].listing(i) for i in range(5000)]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(whole) == 5000 and peak < 30 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    for k in range(50):
        spec = {"developer_key": f"scale-{k}", "shop_id": f"{k:024x}", "products": 5000}
        assert http.post("/_sandbox/blaze/shops", json=spec).status_code == 201
    for k in range(50):
        page = http.get("/blaze/api/v1/partner/products", params={"start": 4990, "limit": 50},
                        headers={**BLAZE, "Authorization": f"scale-{k}"}).json()
        assert page["total"] == 5000 and len(page["values"]) == 10
    assert time.perf_counter() - started < 20
