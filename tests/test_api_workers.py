"""Provisioning across processes: killed mid-purchase, several workers, outcomes that stay unknown.

The API runs as real ``uvicorn`` worker processes here (two on PostgreSQL); a process is killed
with SIGKILL, so no shutdown hook runs and its leases are simply left to expire.
"""

import concurrent.futures as cf

import httpx
import pytest
import sqlalchemy as sa

from tests.api_storefront import (
    CREDENTIALS, ApiProcess, ApiThread, attempts, buy, effects_settled, emails_to, first_package, free_port, open_storefront,
    order_row, provider_orders, session_of, settings_for, wait_for, wait_status,
)
from tests.conftest import postgres_url, requires_postgres
from warehouse.tables.orders import unclaimed_esims


def test_killed_mid_purchase_is_provisioned_once_after_restart(sandbox_reset, engine, warehouse, warehouse_url,
                                                               tenant_id):
    settings = settings_for(warehouse_url, free_port(), lease_s=2, poll_s=0.2)
    workers = 2 if postgres_url() else 1
    first = ApiProcess(settings, workers).start()
    try:
        storefront = open_storefront(engine, warehouse, sandbox_reset.url, first.url, tenant_id,
                                     priority={"mobimatter": 0, "esimcard": 1, "airalo": 2})
        bought = buy(first.url, storefront, first_package(first.url, storefront)["package_id"])
        # MobiMatter creates the order at once; completing it hangs (and, when the hang ends, fails)...
        storefront.control("PUT", "/faults/mobimatter", json={"slow_ms": 4000, "fail_next_5xx": 1,
                                                              "only_path": "/order/complete"})
        storefront.pay(session_of(engine, tenant_id, bought["order_id"]))
        (hanging,) = wait_for(lambda: [a for a in attempts(engine, tenant_id)
                                       if a["outcome"] == "started" and a["provider_order_id"]], 15, "order created")
    finally:
        first.kill()  # ...and the worker dies between the two steps, holding only the orderId it wrote down
    storefront.control("DELETE", "/faults")
    assert order_row(engine, tenant_id, bought["order_id"])["status"] == "processing"
    (created,) = provider_orders(storefront.sandbox, "mobimatter", bought["order_id"])
    assert (created["id"], created["state"]) == (hanging["provider_order_id"], "created")
    second = ApiProcess(settings, workers).start()
    try:
        wait_status(engine, tenant_id, bought["order_id"], {"provisioned"}, timeout=30)
        wait_for(lambda: effects_settled(engine, tenant_id), 20, "email sent")
    finally:
        second.stop()
    (completed,) = provider_orders(storefront.sandbox, "mobimatter", bought["order_id"])  # the same order, completed
    assert (completed["id"], completed["state"]) == (created["id"], "completed")
    for other in ("esimcard", "airalo"):
        assert httpx.get(f"{storefront.sandbox}/_sandbox/{other}/orders").json()["orders"] == []
    (attempt,) = attempts(engine, tenant_id)
    assert (attempt["outcome"], attempt["provider_order_id"]) == ("succeeded", created["id"])
    assert attempt["iccid"] in completed["iccids"]
    assert len(emails_to(storefront.sandbox, bought["order_id"])) == 1


def test_unknown_outcome_waits_then_fails_over_after_give_up(sandbox_reset, engine, warehouse, warehouse_url,
                                                             tenant_id):
    settings = settings_for(warehouse_url, free_port(), give_up_after_s=2, retry_base_s=0.4, poll_s=0.1,
                            provider_timeout_s=0.5)
    with ApiThread(settings) as api:
        storefront = open_storefront(engine, warehouse, sandbox_reset.url, api.url, tenant_id)
        bought = buy(api.url, storefront, first_package(api.url, storefront)["package_id"])
        storefront.control("PUT", "/faults/esimcard", json={"fail_next_5xx": 1})  # the purchase answers HTTP 500
        storefront.pay(session_of(engine, tenant_id, bought["order_id"]))
        storefront.flush()
        wait_for(lambda: [a for a in attempts(engine, tenant_id) if a["outcome"] == "unknown"], 10, "unknown outcome")
        # ...and eSIM Card's eSIM list, where a lost purchase is looked for, cannot be read either:
        storefront.control("PUT", "/faults/esimcard", json={"down": True, "only_path": "/my-esims"})
        # nothing is bought elsewhere...
        assert order_row(engine, tenant_id, bought["order_id"])["status"] == "processing"
        assert all(a["provider"] == "esimcard" for a in attempts(engine, tenant_id))
        # ...until the give-up time, when the unknown attempt is abandoned and provisioning goes on.
        wait_status(engine, tenant_id, bought["order_id"], {"provisioned"}, timeout=20)
    outcomes = [(a["provider"], a["outcome"]) for a in attempts(engine, tenant_id)]
    assert outcomes[0] == ("esimcard", "abandoned")
    assert outcomes[-1] == ("mobimatter", "succeeded")  # the next provider: eSIM Card may have sold it after all


def _esimcard_sims(sandbox_url: str) -> list[str]:
    return [i for o in httpx.get(f"{sandbox_url}/_sandbox/esimcard/orders").json()["orders"] for i in o["iccids"]]


def _other_providers_orders(sandbox_url: str) -> list[dict]:
    return [o for p in ("mobimatter", "airalo")
            for o in httpx.get(f"{sandbox_url}/_sandbox/{p}/orders").json()["orders"]]


def _buy_by_hand_at_esimcard(sandbox_url: str, package_id: str) -> None:
    """What the merchant might do in eSIM Card's portal: an eSIM bought on the account, for no order."""
    base = f"{sandbox_url}/esimcard/api/developer/reseller"
    token = httpx.post(f"{base}/login", json=CREDENTIALS["esimcard"]).json()["access_token"]
    bought = httpx.post(f"{base}/package/purchase", json={"package_type_id": package_id}, timeout=30,
                        headers={"Authorization": f"Bearer {token}"})
    assert bought.json()["status"] is True, bought.text


@pytest.mark.parametrize("stray", [False, True], ids=["lost_answer", "lost_answer_and_a_stray_esim"])
def test_a_lost_esimcard_answer_is_found_in_its_esim_list(sandbox_reset, engine, warehouse, warehouse_url,
                                                         tenant_id, stray):
    settings = settings_for(warehouse_url, free_port(), give_up_after_s=4, retry_base_s=0.3, poll_s=0.1,
                            provider_timeout_s=1)
    with ApiThread(settings) as api:
        storefront = open_storefront(engine, warehouse, sandbox_reset.url, api.url, tenant_id)
        bought = buy(api.url, storefront, first_package(api.url, storefront)["package_id"])
        # eSIM Card sells the eSIM, and its answer arrives only after we stopped waiting for it
        storefront.control("PUT", "/faults/esimcard", json={"hold_answer_ms": 2500, "only_path": "/package/purchase"})
        storefront.pay(session_of(engine, tenant_id, bought["order_id"]))
        storefront.flush()
        (lost,) = wait_for(lambda: [a for a in attempts(engine, tenant_id) if a["outcome"] == "unknown"], 10,
                           "a purchase whose answer was lost")
        assert len(_esimcard_sims(storefront.sandbox)) == 1
        if stray:
            _buy_by_hand_at_esimcard(storefront.sandbox, lost["provider_package_id"])
        order = wait_status(engine, tenant_id, bought["order_id"], {"provisioned"}, timeout=20)
        wait_for(lambda: effects_settled(engine, tenant_id), 20, "email and notices sent")
    (attempt,) = attempts(engine, tenant_id)  # the lost purchase itself, found: nothing bought again
    assert (attempt["provider"], attempt["outcome"], attempt["id"]) == ("esimcard", "succeeded", lost["id"])
    assert _other_providers_orders(storefront.sandbox) == []
    sims = _esimcard_sims(storefront.sandbox)
    assert len(sims) == (2 if stray else 1) and attempt["iccid"] in sims
    assert len(emails_to(storefront.sandbox, order["order_id"])) == 1
    with engine.connect() as conn:
        unclaimed = [dict(r) for r in conn.execute(sa.select(unclaimed_esims).where(
            unclaimed_esims.c.tenant_id == tenant_id)).mappings()]
    alerts = [m for m in storefront.slack_messages() if "belong to no order" in m]
    if not stray:
        assert unclaimed == [] and alerts == []
        return
    # the eSIM nobody ordered is recorded and alerted, never silently left
    (left,) = unclaimed
    assert left["iccid"] in sims and left["iccid"] != attempt["iccid"] and left["order_id"] == order["order_id"]
    (alert,) = alerts
    assert left["iccid"] in alert and left["provider_order_id"] in alert


def test_a_created_order_given_up_on_is_cancelled_before_failing_over(sandbox_reset, engine, warehouse,
                                                                       warehouse_url, tenant_id):
    settings = settings_for(warehouse_url, free_port(), give_up_after_s=2, retry_base_s=0.4, poll_s=0.1,
                            provider_timeout_s=1)
    with ApiThread(settings) as api:
        storefront = open_storefront(engine, warehouse, sandbox_reset.url, api.url, tenant_id,
                                     priority={"mobimatter": 0, "esimcard": 1, "airalo": 2})
        bought = buy(api.url, storefront, first_package(api.url, storefront)["package_id"])
        # MobiMatter creates the order, then no completion is ever answered: whether it went through stays unknown.
        storefront.control("PUT", "/faults/mobimatter", json={"down": True, "only_path": "/order/complete"})
        storefront.pay(session_of(engine, tenant_id, bought["order_id"]))
        storefront.flush()
        wait_status(engine, tenant_id, bought["order_id"], {"provisioned"}, timeout=30)
    (given_up, *_, served) = attempts(engine, tenant_id)
    assert (given_up["provider"], given_up["outcome"]) == ("mobimatter", "abandoned")
    assert given_up["error_class"] == "gave_up"
    (created,) = provider_orders(storefront.sandbox, "mobimatter", bought["order_id"])
    assert created["state"] == "cancelled" and f"{created['id']} was cancelled" in given_up["error"]
    assert (served["provider"], served["outcome"]) == ("esimcard", "succeeded")


@requires_postgres("two API worker processes share one PostgreSQL, one of them killed mid-purchase")
def test_killed_between_the_esimcard_purchase_and_its_answer_buys_each_esim_once(
        sandbox_reset, engine, warehouse, warehouse_url, tenant_id):
    settings = settings_for(warehouse_url, free_port(), lease_s=2, poll_s=0.2, provider_timeout_s=1,
                            give_up_after_s=4, retry_base_s=0.3)
    first = ApiProcess(settings, workers=2).start()
    try:
        storefront = open_storefront(engine, warehouse, sandbox_reset.url, first.url, tenant_id)
        package = first_package(first.url, storefront)["package_id"]
        bought = [buy(first.url, storefront, package, quantity=2), buy(first.url, storefront, package)]
        # eSIM Card sells, and its answer is held back past the moment the API dies...
        storefront.control("PUT", "/faults/esimcard", json={"hold_answer_ms": 30000, "only_path": "/package/purchase"})
        for b in bought:
            storefront.pay(session_of(engine, tenant_id, b["order_id"]))
        wait_for(lambda: _esimcard_sims(storefront.sandbox), 15, "an eSIM sold at eSIM Card")
    finally:
        first.kill()  # ...killed between eSIM Card's purchase and our write of its answer
    storefront.control("DELETE", "/faults")
    sold_before_the_kill = len(_esimcard_sims(storefront.sandbox))
    assert [a["outcome"] for a in attempts(engine, tenant_id)].count("succeeded") == 0
    second = ApiProcess(settings, workers=2).start()
    try:
        for b in bought:
            wait_status(engine, tenant_id, b["order_id"], {"provisioned"}, timeout=40)
        wait_for(lambda: effects_settled(engine, tenant_id), 20, "emails sent")
    finally:
        second.stop()
    delivered = [a for a in attempts(engine, tenant_id) if a["outcome"] == "succeeded"]
    sims = _esimcard_sims(storefront.sandbox)
    assert sold_before_the_kill >= 1 and len(sims) == len(delivered) == 3  # one purchase per eSIM ordered
    assert sorted(a["iccid"] for a in delivered) == sorted(sims)
    assert _other_providers_orders(storefront.sandbox) == []  # nothing bought again elsewhere after the give-up time
    assert [len(emails_to(storefront.sandbox, b["order_id"])) for b in bought] == [1, 1]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(unclaimed_esims)
                            .where(unclaimed_esims.c.tenant_id == tenant_id)).scalar_one() == 0


@requires_postgres("two API worker processes share one PostgreSQL")
def test_two_workers_ten_deliveries_each_provision_once(sandbox_reset, engine, warehouse, warehouse_url, tenant_id):
    api = ApiProcess(settings_for(warehouse_url, free_port()), workers=2).start()
    try:
        storefront = open_storefront(engine, warehouse, sandbox_reset.url, api.url, tenant_id)
        storefront.delivery(duplicates=10, concurrent=True)
        package = first_package(api.url, storefront)["package_id"]
        bought = [buy(api.url, storefront, package) for _ in range(3)]
        sessions = [session_of(engine, tenant_id, b["order_id"]) for b in bought]
        for session_id in sessions:
            storefront.pay(session_id)
        with cf.ThreadPoolExecutor(8) as pool:  # the success redirect races the ten deliveries
            returns = [pool.submit(httpx.get, f"{api.url}/shops/{tenant_id}/orders/{b['order_id']}/return",
                                   params={"token": b["token"], "session_id": s})
                       for b, s in zip(bought, sessions) for _ in range(3)]
            assert all(r.result().status_code == 303 for r in returns)
        storefront.flush()
        for b in bought:
            wait_status(engine, tenant_id, b["order_id"], {"provisioned"})
        wait_for(lambda: effects_settled(engine, tenant_id), 20, "emails sent")
    finally:
        api.stop()
    purchases = [a for a in attempts(engine, tenant_id) if a["outcome"] == "succeeded"]
    assert sorted(a["order_id"] for a in purchases) == sorted(b["order_id"] for b in bought)
    assert len(httpx.get(f"{storefront.sandbox}/_sandbox/esimcard/orders").json()["orders"]) == 3
    mails = [emails_to(storefront.sandbox, b["order_id"]) for b in bought]
    assert [len(m) for m in mails] == [1, 1, 1]
    assert all(m["attachments"][0]["content_type"] == "image/png" and m["attachments"][0]["size"]
               for (m,) in mails)  # each with its QR code
    deliveries = storefront.deliveries("checkout.session.completed")
    assert len(deliveries) == 30 and all(d["succeeded"] for d in deliveries)


@pytest.fixture(autouse=True)
def _no_leftover_faults(sandbox_reset):
    yield
    httpx.delete(f"{sandbox_reset.url}/_sandbox/faults", timeout=10)
