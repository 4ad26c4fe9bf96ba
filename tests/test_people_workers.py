"""Two API worker processes (uvicorn --workers 2 on PostgreSQL): a revoked grant, session or key is
refused by every worker within a second, because nothing about grants is carried in a token and a
worker remembers a credential for under a second (``auth_cache_s``). The grant and the key are
revoked from this test's process and the session through one worker, so the workers (the other
one, for the session) learn of them only from the database. Each request opens a new connection,
so the kernel spreads them over both workers."""

from __future__ import annotations

import time

import httpx

from people.users import find_user, revoke, revoke_key
from tests.api_storefront import ApiProcess, free_port, settings_for
from tests.conftest import postgres_url
from tests.people_world import PASSWORD, bearer, make_world

ROUNDS = 40


def _statuses(url: str, headers: dict) -> set[int]:
    return {httpx.get(url, headers=headers, timeout=5).status_code for _ in range(ROUNDS)}


def _refused_within(url: str, headers: dict, status: int, since: float) -> float:
    while httpx.get(url, headers=headers, timeout=5).status_code != status:
        assert time.monotonic() - since < 5, "still allowed 5 s after the revocation"
    took = time.monotonic() - since
    assert _statuses(url, headers) == {status}  # and refused by every worker from then on
    return took


def test_revocations_reach_every_worker_at_once(engine, warehouse_url, tenant_id):
    world = make_world(engine, tenant_id, n=4)
    api = ApiProcess(settings_for(warehouse_url, free_port()), workers=2 if postgres_url() else 1).start()
    try:
        def token(caller: str) -> dict:
            answer = httpx.post(f"{api.url}/auth/token", data={"username": world.users[caller], "password": PASSWORD})
            assert answer.status_code == 200, answer.text
            return answer.json()

        url = f"{api.url}/tenants/{world.own}/invoices"
        nurse = bearer(token("nurse")["access_token"])
        viewer_tokens = token("viewer")
        viewer = bearer(viewer_tokens["access_token"])
        key = bearer(world.keys["key"])
        for headers in (nurse, viewer, key):
            assert _statuses(url, headers) == {200}

        with engine.begin() as conn:
            revoke(conn, find_user(conn, world.users["nurse"])["id"], world.own)
        assert _refused_within(url, nurse, 403, time.monotonic()) < 1.0

        start = time.monotonic()
        assert httpx.post(f"{api.url}/auth/revoke", json={"refresh_token": viewer_tokens["refresh_token"]}
                          ).status_code == 204
        assert _refused_within(url, viewer, 401, start) < 1.0

        with engine.begin() as conn:
            machine = find_user(conn, world.users["machine"])["id"]
            prefix = world.keys["key"].split("_")[1]
            assert revoke_key(conn, machine, prefix)
        assert _refused_within(url, key, 401, time.monotonic()) < 1.0
    finally:
        api.stop()
