"""The API's own documentation: /docs works offline, and the OpenAPI document tells the truth
(its examples work against the demo, `{tenant}` is described, each route lists its real answers)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from storehouse.demo import register_demo_tenants
from storehouse.demo_storefront import STOREFRONT
from tests.api_storefront import load_catalog, settings_for
from tests.test_pos_assets import materialize

POS_STOREFRONTS = {"/webhooks/pos/": "mile-high-treez", "/pos/orders": "front-range-dutchie",
                   "/portaus/": "importations-portaus"}  # a demo tenant with the connection each route needs

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


@pytest.fixture
def bare_client(warehouse_url, engine):
    with TestClient(create_app(settings_for(warehouse_url, 8000, worker_enabled=False), engine)) as c:
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_assets_the_api_serves_itself(bare_client, page):
    html = bare_client.get(page)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"], (html.status_code, html.text[:500])
    assets = ASSET.findall(html.text)
    assert assets, html.text
    for url in assets:
        assert url.startswith("/"), f"{page} loads {url} from elsewhere: blank without internet"
        served = bare_client.get(url)
        assert served.status_code == 200 and len(served.content) > 1000, (url, served.status_code, len(served.content))
    assert "swagger-ui-bundle.js" in html.text if page == "/docs" else "redoc.standalone.js" in html.text
    assert "SwaggerUIBundle" in bare_client.get("/docs-assets/swagger-ui-bundle.js").text


def _example(holder: dict):
    """The example a parameter or schema carries, in any of OpenAPI's spellings; else ``...``."""
    if "example" in holder:
        return holder["example"]
    examples = holder.get("examples")
    if isinstance(examples, dict) and examples:
        return next(iter(examples.values()))["value"]
    if isinstance(examples, list) and examples:
        return examples[0]
    return ...


def _requests(spec: dict):
    """(method, path, params, headers, body) for every operation whose required inputs all have examples."""
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            values: dict[str, dict] = {"path": {}, "query": {}, "header": {}}
            complete = True
            for p in op.get("parameters", []):
                value = _example(p)
                if value is ... and (value := _example(p["schema"])) is ...:
                    complete &= not p.get("required")
                    continue
                values[p["in"]][p["name"]] = value
            body = None
            if "requestBody" in op:
                schema = op["requestBody"]["content"].get("application/json", {}).get("schema", {})
                if "$ref" not in schema:  # a form (the OAuth2 sign-in) or an inline schema: no example to send
                    continue
                name = schema["$ref"].rsplit("/", 1)[1]
                body = _example(spec["components"]["schemas"][name])
                complete &= body is not ...
            if complete:
                yield method, path.format(**values["path"]), values["query"], values["header"], body


def test_every_openapi_example_works_as_sent_against_the_demo_storefront(sandbox_reset, warehouse, warehouse_url, engine):
    register_demo_tenants(engine, sandbox_reset.url)
    load_catalog(warehouse, STOREFRONT)
    for tenant in ("front-range-dutchie", "importations-portaus"):  # what `storehouse demo` syncs
        assert materialize(warehouse, tenant).success
    app = create_app(settings_for(warehouse_url, 8000, worker_enabled=False), engine)
    with TestClient(app) as client:
        spec = client.get("/openapi.json").json()
        sent = {}
        for method, path, params, headers, body in _requests(spec):
            response = client.request(method, path, params=params, headers=headers, json=body)
            # a meaningful answer: success, or a problem the caller can act on (a webhook sent
            # without its signature, say); never a server error
            assert response.status_code < 500, (method, path, params, body, response.text)
            assert response.is_success or response.headers["content-type"] == "application/problem+json"
            sent[(method, path)] = response
    # the routes whose own inputs carry examples work as they are
    catalog = sent[("get", f"/shops/{STOREFRONT}/catalog")].raise_for_status().json()
    checkout = sent[("post", f"/shops/{STOREFRONT}/checkout")].raise_for_status().json()
    example = spec["components"]["schemas"]["CheckoutRequest"]["examples"][0]
    assert example["package_id"] in {item["package_id"] for item in catalog["items"]}
    assert checkout["checkout_url"] and checkout["amount_total"]
    # the POS routes name a demo tenant that has that connection, and their examples work too
    for (method, path), response in sent.items():
        for part, tenant in POS_STOREFRONTS.items():
            if part in path:
                assert path.startswith(f"/shops/{tenant}/"), path
                assert response.json().get("type", "").rsplit("/", 1)[-1] not in ("shop-not-found", "no-pos",
                                                                              "unknown-webhook"), response.text
    placed = sent[("post", "/shops/front-range-dutchie/pos/orders")]
    assert placed.status_code == 201 and placed.json()["status"] == "submitted", placed.text
    got = sent[("get", f"/shops/front-range-dutchie/pos/orders/{placed.json()['order_ref']}")]
    assert got.status_code == 200 and got.json()["provider_order_id"] == placed.json()["provider_order_id"]
    intent = sent[("post", "/shops/importations-portaus/portaus/payment-intents")]
    assert intent.status_code == 201 and intent.json()["intent_id"] and intent.json()["amount"], intent.text
    webhook = sent[("post", "/shops/mile-high-treez/webhooks/pos/treez")]
    assert webhook.status_code in (401, 403), webhook.text  # sent as-is, without the shop's URL token


def test_storefront_is_described_on_every_route(bare_client):
    spec = bare_client.get("/openapi.json").json()
    storefronts = [p for path, ops in spec["paths"].items() if path.startswith("/shops/") for op in ops.values()
                   for p in op.get("parameters", []) if p["name"] == "tenant"]
    assert len(storefronts) >= 8
    assert all("slug" in p.get("description", "") for p in storefronts)


def test_checkout_documents_its_replay_and_routes_list_only_their_own_errors(bare_client):
    spec = bare_client.get("/openapi.json").json()
    responses = {(method, path): {int(code) for code in op["responses"]}
                 for path, ops in spec["paths"].items() for method, op in ops.items()}
    checkout = spec["paths"]["/shops/{tenant}/checkout"]["post"]["responses"]
    assert checkout["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CheckoutResponse"}
    assert "Idempotent-Replayed" in checkout["200"]["headers"] and "replay" in checkout["200"]["description"].lower()
    assert responses[("get", "/shops/{tenant}/catalog")] == {200, 404, 422}
    assert responses[("get", "/shops/{tenant}/orders/{order_id}")] == {200, 401, 404, 422}
    assert responses[("post", "/shops/{tenant}/webhooks/stripe")] == {200, 400, 404, 413, 422}
    assert responses[("get", "/readyz")] == {200, 503}
    # of the shop's routes only checkout and POS webhooks are rate limited; no route without a body
    # refuses a large one; nobody answers 409 on a GET
    assert sorted(key for key, codes in responses.items() if 429 in codes and key[1].startswith("/shops/")) == [
        ("post", "/shops/{tenant}/checkout"), ("post", "/shops/{tenant}/webhooks/pos/{provider}")]
    assert not [key for key, codes in responses.items() if key[0] == "get" and codes & {409, 413}]
    assert {403} <= responses[("post", "/shops/{tenant}/pos/orders")]  # a wrong key for that POS
    assert {503} <= responses[("post", "/shops/{tenant}/pos/orders")]  # a POS connection not set up for orders


def test_the_studios_print_routes_and_bodies_are_described(bare_client):
    """Every operation of the print studio says what it does, and every field of its bodies what it means."""
    spec = bare_client.get("/openapi.json").json()
    studio = "/studios/{tenant}"
    for method, path in (("post", "/product-templates"), ("patch", "/product-templates/{template_id}"),
                         ("get", "/print-jobs/{job_id}")):
        assert spec["paths"][studio + path][method].get("description"), (method, path)
    schemas = spec["components"]["schemas"]
    for name in ("JobIn", "MaterialIn", "PrinterIn", "TemplateIn", "QuickOrderRequest", "QuoteItem", "Supports"):
        bare = [field for field, schema in schemas[name]["properties"].items() if not schema.get("description")]
        assert bare == [], f"{name}: fields without a description: {bare}"
