"""The eSIMCard, MobiMatter and Airalo fakes over real HTTP: auth, paging, limits, orders, stock, usage."""

from __future__ import annotations

import re

import httpx
import pytest

from sandbox.esim_common import catalog, luhn_valid, make_iccid

LPA = re.compile(r"^LPA:1\$[A-Za-z0-9.-]+\.[A-Za-z0-9-]+\$[A-Z0-9-]+$")
ESC = "/esimcard/api/developer/reseller"
MM_HEADERS = {"merchantId": "mm-demo-merchant", "api-key": "mm-demo-key"}
AIRALO_CLIENT = {"client_id": "airalo-demo-client", "client_secret": "airalo-demo-secret",
                 "grant_type": "client_credentials"}


def luhn_ok(number: str) -> bool:
    """Independent of the sandbox's own helper, so the fake is checked, not trusted."""
    digits = [int(d) for d in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def assert_esim(iccid: str, lpa: str) -> None:
    assert iccid.startswith("89") and len(iccid) in (19, 20) and luhn_ok(iccid), iccid
    assert LPA.match(lpa), lpa


@pytest.fixture
def client(sandbox_reset):
    with httpx.Client(base_url=sandbox_reset.url, timeout=10) as http:
        yield http


def control_orders(client: httpx.Client, name: str) -> list[dict]:
    return client.get(f"/_sandbox/{name}/orders").json()["orders"]


def stock_of(client: httpx.Client, name: str, package_id: str) -> int:
    return client.get(f"/_sandbox/{name}/stock").json()["packages"][package_id]


# ---- shared model ---------------------------------------------------------------------------


def test_identifiers_and_catalog_are_deterministic_and_valid():
    assert luhn_ok("8900000461442300635") and not luhn_ok("891000000000009125")
    assert luhn_valid("89852240810733629810") and not luhn_valid("891000000000009125")
    iccid = make_iccid("8944", 42, 19)
    assert len(iccid) == 19 and luhn_ok(iccid)
    plans = catalog()
    assert plans == catalog() and len({p.key for p in plans}) == len(plans)
    assert any(p.key == "jp-1gb-7d" for p in plans) and any(p.data_mb is None for p in plans)


def test_every_provider_sells_the_same_plans_under_its_own_ids(client):
    ids = {}
    for name in ("esimcard", "mobimatter", "airalo"):
        stock = client.get(f"/_sandbox/{name}/stock").json()
        by_key = {key: pid for pid, key in stock["plan_keys"].items()}
        ids[name] = by_key["jp-1gb-7d"]
        assert stock["packages"][ids[name]] > 0  # entry plans are always stocked after a reset
    assert len(set(ids.values())) == 3


# ---- eSIMCard -------------------------------------------------------------------------------


def esimcard_auth(client: httpx.Client) -> dict:
    r = client.post(f"{ESC}/login", json={"email": "demo@esimcard.test", "password": "demo-password"})
    assert r.status_code == 200 and r.json()["status"] is True
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_esimcard_rejects_bad_credentials_and_tokens(client):
    r = client.post(f"{ESC}/login", json={"email": "demo@esimcard.test", "password": "wrong"})
    assert r.status_code == 401 and r.json()["status"] is False
    r = client.get(f"{ESC}/packages", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and r.json() == {"message": "Unauthenticated."}
    headers = esimcard_auth(client)
    assert client.get(f"{ESC}/packages", headers=headers).status_code == 200
    client.delete("/_sandbox/esimcard/tokens")
    assert client.get(f"{ESC}/packages", headers=headers).status_code == 401


def test_esimcard_pages_to_the_end(client):
    headers, page, seen = esimcard_auth(client), 1, []
    while True:
        body = client.get(f"{ESC}/packages", params={"page": page}, headers=headers).json()
        seen += [p["id"] for p in body["data"]]
        if page >= body["meta"]["lastPage"]:
            break
        page += 1
    assert len(seen) == len(set(seen)) == body["meta"]["total"] and page > 1
    capped = client.get(f"{ESC}/packages", params={"per_page": 500}, headers=headers).json()
    assert capped["meta"]["perPage"] == 100 and len(capped["data"]) == 100


def test_esimcard_purchase_usage_and_topup(client):
    headers = esimcard_auth(client)
    package = client.get(f"{ESC}/packages", headers=headers).json()["data"][0]
    before = stock_of(client, "esimcard", package["id"])
    r = client.post(f"{ESC}/package/purchase", headers=headers,
                    json={"package_type_id": package["id"], "sandbox": True})
    assert r.status_code == 200 and r.json()["status"] is True
    sim = r.json()["data"]["sim"]
    assert_esim(sim["iccid"], sim["qr_code_text"])
    png = client.get(sim["qr_code_url"])
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    assert stock_of(client, "esimcard", package["id"]) == before - 1
    listed = client.get(f"{ESC}/my-esims", headers=headers).json()["data"]
    assert [s["iccid"] for s in listed] == [sim["iccid"]]

    client.put(f"/_sandbox/esimcard/sims/{sim['iccid']}/usage", json={"used_mb": 300})
    usage = client.get(f"{ESC}/my-sim/{sim['id']}/usage", headers=headers).json()["data"]
    assert usage["rem_data_quantity"] == usage["initial_data_quantity"] - 300 and usage["status"] == "Active"

    r = client.post(f"{ESC}/package/purchase", headers=headers,
                    json={"package_type_id": package["id"], "iccid": sim["iccid"]})
    assert r.json()["data"]["sim"]["iccid"] == sim["iccid"]
    assert client.get(f"{ESC}/my-esims/{sim['id']}", headers=headers).json()["data"]["sim"]["total_bundles"] == 2


def test_esimcard_has_no_idempotency_and_refuses_inside_a_200(client):
    headers = esimcard_auth(client)
    package_id = client.get(f"{ESC}/packages", headers=headers).json()["data"][1]["id"]
    for _ in range(2):
        client.post(f"{ESC}/package/purchase", headers=headers, json={"package_type_id": package_id})
    assert len(control_orders(client, "esimcard")) == 2  # a blind retry buys twice

    client.put(f"/_sandbox/esimcard/stock/{package_id}", json={"units": 0})
    r = client.post(f"{ESC}/package/purchase", headers=headers, json={"package_type_id": package_id})
    assert r.status_code == 200 and r.json()["status"] is False and "out of stock" in r.json()["message"]
    client.put("/_sandbox/esimcard/accounts/demo@esimcard.test/fail_orders", json={"enabled": True})
    client.put(f"/_sandbox/esimcard/stock/{package_id}", json={"units": 5})
    r = client.post(f"{ESC}/package/purchase", headers=headers, json={"package_type_id": package_id})
    assert r.json()["status"] is False and "balance" in r.json()["message"]
    r = client.post(f"{ESC}/package/purchase", headers=headers, json={"package_type_id": "nope"})
    assert r.status_code == 422 and "package_type_id" in r.json()["errors"]
    assert len(control_orders(client, "esimcard")) == 2


# ---- MobiMatter -----------------------------------------------------------------------------


def mm_buy(client: httpx.Client, product_id: str, **extra) -> httpx.Response:
    return client.post("/mobimatter/api/v2/order", headers=MM_HEADERS,
                       json={"productId": product_id, "productCategory": "esim_realtime", **extra})


def mm_product(client: httpx.Client, country: str = "JP") -> dict:
    return client.get("/mobimatter/api/v2/products", headers=MM_HEADERS, params={"country": country}).json()["result"][0]


def test_mobimatter_auth_and_unpaged_filtered_catalog(client):
    assert client.get("/mobimatter/api/v2/products").status_code == 401
    r = client.get("/mobimatter/api/v2/products", headers={**MM_HEADERS, "api-key": "wrong"})
    assert r.status_code == 401 and r.json() == {"statusCode": 401, "message": "Unauthorized"}
    everything = client.get("/mobimatter/api/v2/products", headers=MM_HEADERS).json()
    assert everything["statusCode"] == 200 and len(everything["result"]) == len(catalog())
    japan = client.get("/mobimatter/api/v2/products", headers=MM_HEADERS, params={"country": "jp"}).json()["result"]
    assert japan and all("JP" in p["countries"] for p in japan)
    details = {d["name"]: d["value"] for d in japan[0]["productDetails"]}
    assert details["PLAN_VALIDITY"] == "168"  # hours, not days: the entry plan is 7 days


def test_mobimatter_two_step_order_and_usage(client):
    product = mm_product(client)
    r = mm_buy(client, product["productId"], label="sh-order-1")
    assert r.status_code == 200
    order_id = r.json()["result"]["orderId"]
    created = client.get(f"/mobimatter/api/v2/order/{order_id}", headers=MM_HEADERS).json()["result"]
    assert created["orderState"] == "Created" and created["orderLineItem"]["lineItemDetails"] == []

    done = client.put("/mobimatter/api/v2/order/complete", headers=MM_HEADERS, json={"orderId": order_id}).json()
    details = {d["name"]: d["value"] for d in done["result"]["orderLineItem"]["lineItemDetails"]}
    assert done["result"]["orderState"] == "Completed"
    assert_esim(details["ICCID"], details["LOCAL_PROFILE_ASSISTANT"])
    assert details["QR_CODE"].startswith("data:image/png;base64,")
    by_iccid = client.get("/mobimatter/api/v2/order", headers=MM_HEADERS, params={"iccid": details["ICCID"]})
    assert by_iccid.json()["result"]["orderId"] == order_id

    usage = client.get(f"/mobimatter/api/v2/provider/usage/{order_id}", headers=MM_HEADERS).json()
    assert "statusCode" not in usage and usage["orderId"] == order_id  # no envelope
    other = {"merchantId": "mm-shop2-merchant", "api-key": "mm-shop2-key"}
    assert client.get(f"/mobimatter/api/v2/order/{order_id}", headers=other).status_code == 404


def test_mobimatter_repeated_label_buys_again_and_only_complete_is_idempotent(client):
    product = mm_product(client)
    before = stock_of(client, "mobimatter", product["productId"])
    first = mm_buy(client, product["productId"], label="sh-order-7").json()["result"]["orderId"]
    again = mm_buy(client, product["productId"], label="sh-order-7").json()["result"]["orderId"]
    assert first != again and [o["reference"] for o in control_orders(client, "mobimatter")] == ["sh-order-7"] * 2
    assert stock_of(client, "mobimatter", product["productId"]) == before - 2
    iccids = set()
    for _ in range(2):
        r = client.put("/mobimatter/api/v2/order/complete", headers=MM_HEADERS, json={"orderId": first})
        assert r.json()["result"]["orderState"] == "Completed" and r.json()["result"]["label"] == "sh-order-7"
        iccids |= {d["value"] for d in r.json()["result"]["orderLineItem"]["lineItemDetails"] if d["name"] == "ICCID"}
    assert len(iccids) == 1


def test_mobimatter_completion_can_be_refused_and_the_order_cancelled(client):
    product = mm_product(client)
    before = stock_of(client, "mobimatter", product["productId"])
    order_id = mm_buy(client, product["productId"], label="sh-order-8").json()["result"]["orderId"]
    client.put("/_sandbox/mobimatter/accounts/mm-demo-merchant/fail_orders", json={"enabled": True})
    r = client.put("/mobimatter/api/v2/order/complete", headers=MM_HEADERS, json={"orderId": order_id})
    assert r.status_code == 402 and stock_of(client, "mobimatter", product["productId"]) == before - 1
    r = client.put("/mobimatter/api/v2/order/cancel", headers=MM_HEADERS, json={"orderId": order_id, "reason": "x"})
    assert r.status_code == 200 and stock_of(client, "mobimatter", product["productId"]) == before
    client.put("/_sandbox/mobimatter/accounts/mm-demo-merchant/fail_orders", json={"enabled": False})
    r = client.put("/mobimatter/api/v2/order/complete", headers=MM_HEADERS, json={"orderId": order_id})
    assert r.status_code == 400 and "cancelled" in r.json()["message"]


def test_mobimatter_out_of_stock_is_429_and_empty_wallet_402(client):
    product = mm_product(client)
    client.put("/_sandbox/mobimatter/out_of_stock", json={"enabled": True})
    r = mm_buy(client, product["productId"])
    assert r.status_code == 429 and "Retry-After" not in r.headers and "stock" in r.json()["message"]
    client.put("/_sandbox/mobimatter/out_of_stock", json={"enabled": False})
    client.put("/_sandbox/mobimatter/accounts/mm-demo-merchant/fail_orders", json={"enabled": True})
    r = mm_buy(client, product["productId"])
    assert r.status_code == 402 and r.json()["statusCode"] == 400  # the body's code lies; the status does not
    assert control_orders(client, "mobimatter") == []

    client.put("/_sandbox/mobimatter/accounts/mm-demo-merchant/fail_orders", json={"enabled": False})
    before = stock_of(client, "mobimatter", product["productId"])
    order_id = mm_buy(client, product["productId"]).json()["result"]["orderId"]
    r = client.put("/mobimatter/api/v2/order/cancel", headers=MM_HEADERS, json={"orderId": order_id, "reason": "test"})
    assert r.status_code == 200 and stock_of(client, "mobimatter", product["productId"]) == before


# ---- Airalo ---------------------------------------------------------------------------------


def airalo_auth(client: httpx.Client, **credentials: str) -> dict:
    r = client.post("/airalo/v2/token", data={**AIRALO_CLIENT, **credentials})
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["token_type"] == "Bearer" and data["expires_in"] > 0
    return {"Authorization": f"Bearer {data['access_token']}", "Accept": "application/json"}


def test_airalo_token_auth_and_three_per_minute(client):
    r = client.post("/airalo/v2/token", data={**AIRALO_CLIENT, "client_secret": "wrong"})
    assert r.status_code == 401
    assert client.get("/airalo/v2/packages", headers={"Authorization": "Bearer nope"}).status_code == 401
    for _ in range(2):  # the refused attempt above counted too: three in all
        assert client.post("/airalo/v2/token", data=AIRALO_CLIENT).status_code == 200
    r = client.post("/airalo/v2/token", data=AIRALO_CLIENT)
    assert r.status_code == 429 and r.json() == {"message": "Too Many Attempts."}
    assert 1 <= int(r.headers["Retry-After"]) <= 60 and r.headers["X-RateLimit-Remaining"] == "0"
    assert r.headers["X-RateLimit-Limit"] == "3" and int(r.headers["X-RateLimit-Reset"]) > 0


def test_airalo_packages_page_to_the_end_and_throttle(client):
    headers = airalo_auth(client)
    assert client.get("/_sandbox/airalo/limits").json()["packages"] == {"limit": 80, "window_s": 60.0}
    url, entries = "/airalo/v2/packages?filter[type]=local&limit=7", []
    while url:
        body = client.get(url, headers=headers).json()
        entries += body["data"]
        url = body["links"]["next"]
    assert body["meta"]["current_page"] == body["meta"]["last_page"] > 1
    assert len(entries) == body["meta"]["total"] == len({e["slug"] for e in entries})
    packages = [p for e in entries for op in e["operators"] for p in op["packages"]]
    assert all(op["type"] == "local" for e in entries for op in e["operators"])
    assert {"id", "amount", "day", "is_unlimited", "price", "net_price"} <= set(packages[0])

    japan = client.get("/airalo/v2/packages", params={"filter[country]": "JP", "filter[type]": "local"},
                       headers=headers).json()["data"]
    assert [e["country_code"] for e in japan] == ["JP"]

    client.put("/_sandbox/airalo/limits", json={"packages": {"limit": 2, "window_s": 60}})
    codes = [client.get("/airalo/v2/packages", headers=headers) for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert codes[1].headers["X-RateLimit-Remaining"] == "0" and int(codes[2].headers["Retry-After"]) >= 1


def airalo_package(client: httpx.Client, headers: dict) -> str:
    data = client.get("/airalo/v2/packages", params={"filter[country]": "JP", "filter[type]": "local"},
                      headers=headers).json()["data"]
    return data[0]["operators"][0]["packages"][0]["id"]


def test_airalo_order_and_a_repeated_description_buys_again(client):
    headers = airalo_auth(client)
    package_id = airalo_package(client, headers)
    before = stock_of(client, "airalo", package_id)
    body = {"package_id": package_id, "quantity": 2, "type": "sim", "description": "storehouse-order-42"}
    first = client.post("/airalo/v2/orders", headers=headers, json=body)
    assert first.status_code == 200
    sims = first.json()["data"]["sims"]
    assert len(sims) == 2
    for sim in sims:
        assert_esim(sim["iccid"], sim["qrcode"])
        assert sim["qrcode"] == f"LPA:1${sim['lpa']}${sim['matching_id']}"
    assert client.get(sims[0]["qrcode_url"]).content.startswith(b"\x89PNG")

    again = client.post("/airalo/v2/orders", headers=headers, data={**body, "quantity": "2"})  # form, a retry
    assert again.json()["data"]["id"] != first.json()["data"]["id"]  # no idempotency: bought again
    assert len(control_orders(client, "airalo")) == 2 and stock_of(client, "airalo", package_id) == before - 4
    fetched = client.get(f"/airalo/v2/orders/{first.json()['data']['id']}", headers=headers).json()["data"]
    assert [s["iccid"] for s in fetched["sims"]] == [s["iccid"] for s in sims]


def test_airalo_order_list_filters_by_description_like_a_like_search(client):
    headers = airalo_auth(client)
    package_id = airalo_package(client, headers)
    ids = {}
    for description in ("sh-order-1", "sh-order-12", "other"):
        r = client.post("/airalo/v2/orders", headers=headers,
                        json={"package_id": package_id, "quantity": 1, "type": "sim", "description": description})
        ids[description] = r.json()["data"]["id"]
    listed = client.get("/airalo/v2/orders", headers=headers,
                        params={"filter[description]": "SH-ORDER-1", "include": "sims", "limit": 1}).json()
    assert [o["id"] for o in listed["data"]] == [ids["sh-order-12"]]  # newest first, '%…%' matches longer ones
    assert listed["meta"]["total"] == listed["meta"]["last_page"] == 2 and listed["data"][0]["sims"][0]["iccid"]
    second = client.get(listed["links"]["next"], headers=headers).json()["data"]
    assert [o["id"] for o in second] == [ids["sh-order-1"]]
    bare = client.get("/airalo/v2/orders", headers=headers).json()["data"]
    assert len(bare) == 3 and "sims" not in bare[0]  # sims only when included
    assert client.get("/airalo/v2/orders", headers=headers, params={"filter[description]": "nope"}).json()["data"] == []
    other = airalo_auth(client, client_id="airalo-shop2-client", client_secret="airalo-shop2-secret")
    assert client.get("/airalo/v2/orders", headers=other).json()["data"] == []  # only the account's own


def test_airalo_order_refusals(client):
    headers = airalo_auth(client)
    package_id = airalo_package(client, headers)
    r = client.post("/airalo/v2/orders", headers=headers, json={"package_id": package_id, "quantity": 51})
    assert r.status_code == 422 and "quantity" in r.json()["data"]
    r = client.post("/airalo/v2/orders", headers=headers, json={"package_id": "no-such-pkg", "quantity": 1})
    assert r.status_code == 422 and "package_id" in r.json()["data"]
    client.put(f"/_sandbox/airalo/stock/{package_id}", json={"units": 1})
    r = client.post("/airalo/v2/orders", headers=headers, json={"package_id": package_id, "quantity": 2})
    assert r.status_code == 422 and r.json()["code"] == 33
    client.put("/_sandbox/airalo/accounts/airalo-demo-client/fail_orders", json={"enabled": True})
    r = client.post("/airalo/v2/orders", headers=headers, json={"package_id": package_id, "quantity": 1})
    assert r.status_code == 422 and r.json()["code"] == 11
    assert control_orders(client, "airalo") == [] and stock_of(client, "airalo", package_id) == 1


def test_airalo_usage_statuses_and_404(client):
    headers = airalo_auth(client)
    order = client.post("/airalo/v2/orders", headers=headers,
                        json={"package_id": airalo_package(client, headers), "quantity": 1}).json()["data"]
    iccid = order["sims"][0]["iccid"]
    usage = client.get(f"/airalo/v2/sims/{iccid}/usage", headers=headers).json()["data"]
    assert usage["status"] == "NOT_ACTIVE" and usage["remaining"] == usage["total"] == 1024
    client.put(f"/_sandbox/airalo/sims/{iccid}/usage", json={"used_mb": 1000})
    usage = client.get(f"/airalo/v2/sims/{iccid}/usage", headers=headers).json()["data"]
    assert usage["status"] == "ACTIVE" and usage["remaining"] == 24 and usage["expired_at"]
    client.put(f"/_sandbox/airalo/sims/{iccid}/usage", json={"used_mb": 1024})
    assert client.get(f"/airalo/v2/sims/{iccid}/usage", headers=headers).json()["data"]["status"] == "FINISHED"
    missing = client.get("/airalo/v2/sims/8910300000000000000/usage", headers=headers)
    assert missing.status_code == 404
    assert missing.json() == {"data": [], "meta": {"message": "messages.resource_not_found"}}


def test_fault_only_path_hits_only_matching_requests(client):
    product = mm_product(client)
    client.put("/_sandbox/faults/mobimatter", json={"fail_next_5xx": 1, "only_path": "/order/complete"})
    order_id = mm_buy(client, product["productId"]).json()["result"]["orderId"]  # create: not faulted
    complete = {"orderId": order_id}
    assert client.put("/mobimatter/api/v2/order/complete", headers=MM_HEADERS, json=complete).status_code == 500
    assert client.get(f"/mobimatter/api/v2/order/{order_id}", headers=MM_HEADERS).json()["result"]["orderState"] \
        == "Created"
    assert client.put("/mobimatter/api/v2/order/complete", headers=MM_HEADERS, json=complete).status_code == 200
    assert client.get("/_sandbox/faults").json()["mobimatter"]["calls"] == 4  # every call is still counted


def test_generic_fault_switch_still_applies(client):
    client.put("/_sandbox/faults/airalo", json={"fail_next_429": 1, "retry_after": 2})
    r = client.post("/airalo/v2/token", data=AIRALO_CLIENT)
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    assert client.post("/airalo/v2/token", data=AIRALO_CLIENT).status_code == 200


def test_a_restarted_sandbox_never_reissues_an_iccid(client):
    """Every demo run starts the sandbox afresh (a reset is exactly that start); the eSIMs it sells
    must not repeat the ICCIDs or activation codes of an earlier run's orders, kept in the warehouse."""
    def buy_two() -> list[tuple[str, str]]:
        headers = airalo_auth(client)
        body = {"package_id": airalo_package(client, headers), "quantity": 2, "type": "sim", "description": "run"}
        sims = client.post("/airalo/v2/orders", headers=headers, json=body).json()["data"]["sims"]
        return [(s["iccid"], s["qrcode"]) for s in sims]

    first_run = buy_two()
    client.post("/_sandbox/reset").raise_for_status()
    second_run = buy_two()
    for iccid, _ in first_run + second_run:
        assert_esim(iccid, _)
    assert not {i for i, _ in first_run} & {i for i, _ in second_run}
    assert not {c for _, c in first_run} & {c for _, c in second_run}
