"""The sandbox app as a whole: every fake is mounted, listed by /healthz and documented at /docs."""

from __future__ import annotations

import importlib

import httpx
import pytest

from sandbox.app import FAKE_MODULES, create_app

MODULES = [importlib.import_module(name) for name in FAKE_MODULES]


@pytest.fixture(scope="module")
def schema() -> dict:
    return create_app().openapi()


def documented(router, prefix: str) -> set[str]:
    return {prefix + route.path for route in router.routes if getattr(route, "include_in_schema", False)}


def test_openapi_schema_builds_and_lists_every_fakes_paths(schema):
    paths = set(schema["paths"])
    for module in MODULES:
        own = documented(module.router, f"/{module.NAME}")
        assert own, f"{module.__name__} documents no route"
        assert own <= paths, f"{module.__name__}: {sorted(own - paths)} missing from the schema"
        control = getattr(module, "control", None)
        if control is not None:
            switches = documented(control, f"/_sandbox/{module.NAME}")
            assert switches <= paths, f"{module.__name__}: {sorted(switches - paths)} missing from the schema"
    assert {"/healthz", "/_sandbox/reset", "/_sandbox/faults"} <= paths


@pytest.mark.parametrize("name", ["esimcard", "mobimatter", "airalo"])
def test_esim_account_control_route_takes_a_json_body(schema, name):
    body = schema["paths"][f"/_sandbox/{name}/accounts"]["post"]["requestBody"]
    assert body["required"] and "application/json" in body["content"]


def test_created_esim_account_can_log_in(sandbox_reset):
    with httpx.Client(base_url=sandbox_reset.url, timeout=10) as http:
        created = http.post("/_sandbox/esimcard/accounts", json={"email": "new@esimcard.test", "password": "pw-1"})
        assert created.status_code == 201, created.text
        assert created.json() == {"email": "new@esimcard.test", "password": "pw-1", "fail_orders": False,
                                  "unusable_sims": False}
        login = http.post("/esimcard/api/developer/reseller/login",
                          json={"email": "new@esimcard.test", "password": "pw-1"})
        assert login.status_code == 200 and login.json()["access_token"], login.text


def test_healthz_lists_every_fake_and_docs_are_served(sandbox):
    health = httpx.get(f"{sandbox.url}/healthz", timeout=10)
    assert health.status_code == 200
    assert health.json() == {"ok": True, "fakes": [module.NAME for module in MODULES]}
    assert httpx.get(f"{sandbox.url}/openapi.json", timeout=10).status_code == 200
