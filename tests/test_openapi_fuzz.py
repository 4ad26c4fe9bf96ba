"""Schemathesis over every operation of the API's OpenAPI document, signed in: no input, valid or not,
makes the API answer with a server error, and every answer matches what the document says (status
code, content type, body schema). Issue 12's proof: "0 server errors".

The app runs in-process (ASGI) on the test warehouse, beside the sandbox: a staff world (a user per
role on one tenant, a foreign tenant, an API key), the demo tenants (a shop with its catalogue and
Stripe account, POS tenants) and one paid-for order with its customer link. Path parameters are
drawn from those real values as often as from Schemathesis's own, so a case reaches past the
"no such tenant" answer; each case is sent as one caller of several (super admin by token,
tenant owner, clinic staff by API key, nobody). Webhooks are fuzzed unsigned: they must refuse.
Generation is derandomised (the same cases every run) and sized to run in about a minute.
"""

from __future__ import annotations

import collections
import itertools
import time

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup

from api.app import create_app
from storehouse.demo import register_demo_tenants
from storehouse.demo_shop import SHOP
from tests.api_shop import buy, first_package, load_catalogue, settings_for
from tests.people_world import CUSTOMER_ID, bearer, make_world, sign_in

EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15}  # per operation
COVERAGE_CASES = 60  # per operation, at most
# Schema-valid input the API refuses for reasons a schema cannot say (a package this shop does not
# sell, a webhook without its signature) is the API's business, not a mismatch.
EXCLUDED = [schemathesis.checks.positive_data_acceptance]


@pytest.fixture
def fuzz_app(sandbox_reset, engine, warehouse, warehouse_url, tenant_id):
    """The app, its OpenAPI document as Schemathesis reads it, the callers and the real path values."""
    world = make_world(engine, tenant_id)
    register_demo_tenants(engine, sandbox_reset.url)
    load_catalogue(warehouse, SHOP)
    app = create_app(settings_for(warehouse_url, 8000, worker_enabled=False), engine)
    with TestClient(app, raise_server_exceptions=False) as c:
        owner = sign_in(c, world.users["tenant_owner"])
        admin = sign_in(c, world.users["super_admin"])
        callers = {"super_admin": bearer(admin["access_token"]), "tenant_owner": bearer(owner["access_token"]),
                   "api_key": bearer(world.keys["key"]), "anonymous": {}}
        order = c.post(f"/shops/{SHOP}/checkout", json={"package_id": _package(c), "quantity": 1,
                                                         "email": "fuzz@example.com"})
        assert order.status_code == 201, order.text
        order = order.json()
        users = c.get(f"/tenants/{world.own}/users", headers=callers["tenant_owner"]).json()
        user_ids = [u["user_id"] for u in users if u["email"] in (world.users["viewer"], world.users["nurse"])]
        assert len(user_ids) == 2, users
        known = {"tenant": [world.own, world.foreign], "shop": [SHOP, "front-range-dutchie", "mile-high-treez",
                                                                "importations-portaus"],
                 "order_id": [order["order_id"]], "token": [order["token"]],
                 "transaction_id": [2, 4], "invoice_id": [4, 8], "user_id": user_ids, "customer_id": [CUSTOMER_ID]}
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        yield schema, callers, known


def _package(c: TestClient) -> str:
    items = c.get(f"/shops/{SHOP}/catalogue", params={"country": "JP"}).json()["items"]
    return next(i for i in items if i["data_mb"] == 1024 and i["validity_days"] == 7)["package_id"]


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
        """``pick(values)`` chooses a path value from the real ones plus the generated one."""
        for name, values in self.known.items():
            if values and name in (case.path_parameters or {}):
                case.path_parameters[name] = pick([*values, case.path_parameters[name]])
        headers = self.callers[caller]
        response = case.call(headers=headers)
        label = case.operation.label
        self.sent[label] += 1
        self.statuses[response.status_code] += 1
        self.by_operation[label][response.status_code] += 1
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
