"""Schemathesis over every operation of the API's OpenAPI document, signed in: no input, valid or not,
makes the API answer with a server error, and every answer matches what the document says (status
code, content type, body schema). Issue 12's proof: "0 server errors".

The app runs in-process (ASGI) on the test warehouse, beside the sandbox: a staff world (a user per
role on one tenant, a foreign tenant, an API key), the demo tenants (a shop with its catalog and
Stripe account, POS tenants) and one order placed at checkout, with its customer link and Stripe
session. Path parameters (and
the order's token and session) are drawn from those real values as often as from Schemathesis's own,
so a case reaches past the "no such tenant" answer; each case is sent as one caller of several (super admin by token,
tenant owner, clinic staff by API key, nobody). Webhooks are fuzzed unsigned: they must refuse.
Generation is derandomised (the same cases every run) and sized to run in about a minute.
"""

from __future__ import annotations

import collections
import itertools
import os
import time
import uuid

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation

from api.app import create_app
from tests.studio_storage import FolderStorage
from storehouse.demo import DEMO_TENANTS
from storehouse.demo_storefront import STOREFRONT
from tests.api_storefront import load_catalog, order_row, quiesce, settings_for
from tests.people_world import bearer, client, make_world, sign_in
from warehouse import sync_progress
from warehouse.tenants import add_tenant, set_connection

# Per operation; STOREHOUSE_FUZZ_SCALE multiplies them for a deeper run by hand (CI runs at 1).
SCALE = float(os.environ.get("STOREHOUSE_FUZZ_SCALE", "1"))
EXAMPLES = {GenerationMode.POSITIVE: round(25 * SCALE), GenerationMode.NEGATIVE: round(15 * SCALE)}
COVERAGE_CASES = round(60 * SCALE)  # at most
# Schema-valid input the API refuses for reasons a schema cannot say (a package this shop does not
# sell, a webhook without its signature) is the API's business, not a mismatch.
EXCLUDED = [schemathesis.checks.positive_data_acceptance]
GENERATED = object()  # keep what Schemathesis generated


@pytest.fixture
def fuzz_app(sandbox_reset, engine, warehouse, warehouse_url, tenant_id, tmp_path):
    """The app, its OpenAPI document as Schemathesis reads it, the callers and the real path values."""
    world = make_world(engine, tenant_id)
    storefronts = demo_copies(engine, sandbox_reset.url, tenant_id)
    load_catalog(warehouse, storefronts[STOREFRONT])
    app = create_app(settings_for(warehouse_url, 8000, worker_enabled=False), engine,
                     storage=FolderStorage(tmp_path))  # the studio's model uploads need a store
    with TestClient(app, raise_server_exceptions=False) as c:
        owner = sign_in(c, world.users["tenant_owner"])
        admin = sign_in(c, world.users["super_admin"])
        callers = {"super_admin": bearer(admin["access_token"]), "tenant_owner": bearer(owner["access_token"]),
                   "api_key": bearer(world.keys["key"]), "anonymous": {}}
        storefront = storefronts[STOREFRONT]
        order = c.post(f"/shops/{storefront}/checkout", json={"package_id": _package(c, storefront), "quantity": 1,
                                                         "email": "fuzz@example.com"})
        assert order.status_code == 201, order.text
        order = order.json()
        users = c.get(f"/tenants/{world.own}/users", headers=callers["tenant_owner"]).json()
        user_ids = [u["user_id"] for u in users if u["email"] in (world.users["viewer"], world.users["nurse"])]
        assert len(user_ids) == 2, users
        known = {("path", "tenant"): [world.own, world.foreign],
                 ("path", "shop"): [storefronts[s] for s in (STOREFRONT, "front-range-dutchie", "mile-high-treez",
                                                             "importations-portaus")],
                 ("path", "order_id"): [order["order_id"]], ("path", "unit"): [1],
                 ("query", "token"): [order["token"]], ("header", "x-order-token"): [order["token"]],
                 ("query", "session_id"): [order_row(engine, storefront, order["order_id"])["stripe_session_id"]],
                 ("path", "transaction_id"): [2, 4], ("path", "user_id"): user_ids,
                 ("path", "system"): ["slack", "stripe", "mx_merchant"],
                 ("path", "sync_id"): [finished_sync(engine, world.own)],
                 **studio_documents(engine, world.own)}
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        yield schema, callers, known
    for storefront in known[("path", "shop")]:  # what the cases left queued is no later test's work
        quiesce(engine, storefront)


def finished_sync(engine, tenant: str) -> int:
    """A manual sync of the tenant that has ended: its status and its event stream answer at once.
    The staff tenant has no MX Merchant connection, so the cases' POSTs queue none (409): a queued
    sync nothing runs would hold its event stream open for minutes."""
    sync_id = sync_progress.request_manual_sync(engine, tenant, "mx_merchant_sync", None)
    sync_progress.finish(engine, sync_id, "succeeded")
    return sync_id


def studio_documents(engine, tenant: str) -> dict[tuple[str, str], list]:
    """A client, a sent quote and a draft invoice in the staff tenant, as the studio routes' path values."""
    from studio import clients, invoices, quotes
    from studio.activity import Actor
    from studio.db import writing

    item = [{"description": "fuzz part", "quantity": "1", "unit_price": "5.00"}]
    with writing(engine) as conn:
        client_id = clients.create_client(conn, tenant, Actor("system"), name="Fuzz Client")["id"]
        quote_id = quotes.create_quote(conn, tenant, client_id, item, Actor("system"))
        quotes.send_quote(conn, tenant, quote_id, Actor("system"))
        invoice_id = invoices.create_invoice(conn, tenant, client_id, item, Actor("system"))
    return {("path", "client_id"): [client_id], ("path", "quote_id"): [quote_id],
            ("path", "document_id"): [quote_id, invoice_id], ("path", "kind"): ["quotes", "invoices"],
            ("path", "invoice_id"): [4, 8, invoice_id]}


def demo_copies(engine, sandbox_url: str, prefix: str) -> dict[str, str]:
    """The demo tenants' connections under ids of this test's own (demo id -> copy's id): the cases
    place orders, and the demo's own tenants are other tests' fixtures."""
    copies = {t.tenant_id: f"{prefix}-{t.tenant_id}" for t in DEMO_TENANTS}
    with engine.begin() as conn:
        for t in DEMO_TENANTS:
            add_tenant(conn, copies[t.tenant_id], t.name)
            for c in t.connections:
                set_connection(conn, copies[t.tenant_id], c.system, f"{sandbox_url}{c.path}", c.credentials, c.options)
    return copies


def _package(c: TestClient, storefront: str) -> str:
    items = c.get(f"/shops/{storefront}/catalog", params={"country": "JP"}).json()["items"]
    return next(i for i in items if i["data_mb"] == 1024 and i["validity_days"] == 7)["package_id"]


@pytest.mark.timeout(1200)  # about a minute on SQLite, a few on PostgreSQL: above the suite's 300 s
def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(fuzz_app):
    schema, callers, known = fuzz_app
    run = Run(callers, known)
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        # Schemathesis's coverage phase: boundary and just-out-of-bounds values of each input, in turn
        config = schema.config.generation_for(operation=operation, phase="coverage")
        cases = schema.iter_coverage_cases(operation, generation_modes=list(EXAMPLES), generation_config=config)
        for i, case in enumerate(itertools.islice(cases, COVERAGE_CASES)):
            run.send(case, lambda values, i=i: values[i % len(values)], sorted(callers)[i % len(callers)])
        for mode, n in EXAMPLES.items():
            run.fuzz(operation, mode, n)
    took = time.monotonic() - started
    print(f"\n{len(operations)} operations, {run.sent.total()} cases in {took:.0f}s; statuses "
          f"{dict(sorted(run.statuses.items()))}")
    for label, statuses in sorted(run.by_operation.items()):
        print(f"  {label}: {dict(sorted(statuses.items()))}")
    assert len(run.sent) == len(operations)
    report = "\n\n".join(run.failures.values())
    assert not run.failures, f"{len(run.failures)} distinct failures:\n{report}"


class Run:
    """Sends cases as the callers, with real path values mixed in; keeps the distinct failures."""

    def __init__(self, callers: dict[str, dict], known: dict[str, list]) -> None:
        self.callers, self.known = callers, known
        self.failures: dict[tuple, str] = {}
        self.sent: collections.Counter = collections.Counter()
        self.statuses: collections.Counter = collections.Counter()
        self.by_operation: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

    def send(self, case, pick, caller: str) -> None:
        """``pick(values)`` chooses an input's value from the real ones plus the generated one."""
        parameters = case.operation.definition.raw.get("parameters", [])
        declared = {(p.get("in"), p.get("name", "").lower()) for p in parameters}
        for (where, name), values in self.known.items():
            if (where, name) not in declared:
                continue
            container = {"path": "path_parameters", "query": "query", "header": "headers"}[where]
            if getattr(case, container) is None:
                setattr(case, container, {})
            chosen = pick([*values, GENERATED])  # drawn always: the same draws, the same cases
            if case.meta is not None and case.meta.is_negative_at(ParameterLocation(where)):
                # Made invalid on purpose there: a real value in its place would make the case valid,
                # and its acceptance would be reported as accepting invalid data.
                continue
            if chosen is not GENERATED:
                getattr(case, container)[name] = chosen
        headers = self.callers[caller]
        label = case.operation.label
        try:
            response = case.call(headers=headers)
        except Exception as exc:  # the in-process transport re-raises what the app let escape: a 500
            self.sent[label] += 1
            self.failures.setdefault((label, type(exc).__name__), f"{label} as {caller} raised {exc!r}:\n"
                                     f"{case.as_curl_command(headers=headers)}")
            return
        self.sent[label] += 1
        self.statuses[response.status_code] += 1
        self.by_operation[label][response.status_code] += 1
        if response.status_code == 413 and response.json().get("type", "").endswith("/body-too-large"):
            return  # over the API's body limit, refused before any route reads it: the limit's answer, not the route's
        if "/webhooks/" in label and not 400 <= response.status_code < 500:  # sent unsigned: refused, always
            self.failures.setdefault((label, "unsigned webhook", response.status_code),
                                     f"{label} took an unsigned delivery: {response.status_code} {response.text[:300]}")
        try:
            case.validate_response(response, headers=headers, excluded_checks=EXCLUDED)
        except FailureGroup as group:
            for failure in group.exceptions:
                key = (label, type(failure).__name__, response.status_code)
                self.failures.setdefault(key, f"{label} as {caller}: {group.args[0][:3000]}")

    def fuzz(self, operation, mode: GenerationMode, n: int) -> None:
        @settings(max_examples=n, derandomize=True, database=None, deadline=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
        def fuzz(case, data):
            self.send(case, lambda values: data.draw(st.sampled_from(values)),
                      data.draw(st.sampled_from(sorted(self.callers))))

        try:
            fuzz()
        except Unsatisfiable:  # nothing to make invalid (no parameters, no body): the positive cases cover it
            assert mode is GenerationMode.NEGATIVE, operation.label


# -- what Schemathesis found, kept as plain regression tests -------------------------------------

@pytest.fixture
def staff(engine, warehouse_url, tenant_id):
    world = make_world(engine, tenant_id)
    with client(engine, warehouse_url) as c:
        yield c, world, bearer(sign_in(c, world.users["super_admin"])["access_token"])


def test_a_405_names_every_method_of_its_path_in_allow(staff):
    c, world, admin = staff
    for method, path, allowed in (("OPTIONS", "/me/keys", "GET, POST"),
                                  ("PUT", f"/tenants/{world.own}/users/{uuid.uuid4()}", "DELETE, PATCH"),
                                  ("DELETE", "/invitations/accept", "GET, POST"),
                                  ("POST", "/healthz", "GET")):
        answer = c.request(method, path, headers=admin)
        assert answer.status_code == 405, (method, path, answer.text)
        assert answer.headers["allow"] == allowed, (method, path)
        assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", ["transactions", "invoices", "exports/transactions", "exports/invoices",
                                  "analytics"])
def test_dates_in_staff_queries_are_iso_text_not_unix_numbers(staff, path):
    c, world, admin = staff
    url = f"/tenants/{world.own}/{path}"
    for number in ("0", "0.5", "1767225600", "-1", "1e9"):
        answer = c.get(url, params={"since": number}, headers=admin)
        assert answer.status_code == 422, (path, number, answer.text[:200])
        assert answer.json()["errors"][0]["location"] == ["query", "since"]
    iso = "2026-01-01" if path == "analytics" else "2026-01-01T00:00:00Z"
    assert c.get(url, params={"since": iso, "until": iso.replace("01-01", "12-31")}, headers=admin).status_code == 200


def test_a_blank_api_key_name_is_refused_not_a_server_error(staff):
    c, world, admin = staff
    for name in ("\u001f", "   ", "\t\n"):  # whitespace to Python, so past the model's min_length
        answer = c.post("/me/keys", json={"name": name}, headers=admin)
        assert answer.status_code == 422, (name, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert "name" in answer.json()["detail"]
    assert c.post("/me/keys", json={"name": "ci"}, headers=admin).status_code == 201


def test_the_stripe_return_documents_a_bodiless_redirect(engine, warehouse_url):
    with client(engine, warehouse_url) as c:
        answers = c.get("/openapi.json").json()["paths"]["/shops/{tenant}/orders/{order_id}/return"]["get"]["responses"]
    assert "content" not in answers["303"] and "Location" in answers["303"]["headers"]  # it was JSON, and empty
