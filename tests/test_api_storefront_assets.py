"""The hourly shop job: stuck orders recovered by the provisioning engine itself (the marts are dbt's: test_marts).

It is a job of one op on a resource holding the shop's services, not an asset: it writes no table of its own."""

import datetime as dt

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa

from assets.orders import CommerceServicesResource
from assets.partitions import storefront_partitions
from pipelines.orders import orders_job
from resources.dagster_resources import EsimProvidersResource
from tests.api_storefront import (
    SECRET,
    ApiThread,
    attempts,
    buy,
    emails_to,
    first_package,
    free_port,
    open_storefront,
    order_row,
    quiesce,
    session_of,
    settings_for,
    wait_status,
)
from warehouse.tables.orders import order_effects, orders

HOURS_AGO = dt.timedelta(hours=2)


@pytest.fixture
def paid_but_unprovisioned(sandbox_reset, engine, warehouse, warehouse_url, tenant_id, monkeypatch):
    """A shop whose API took the payment and then went away before any worker ran (two hours ago)."""
    monkeypatch.setenv("STOREHOUSE_SHOP_SECRET_KEY", SECRET)
    with ApiThread(settings_for(warehouse_url, free_port(), worker_enabled=False)) as api:
        storefront = open_storefront(engine, warehouse, sandbox_reset.url, api.url, tenant_id)
        bought = buy(api.url, storefront, first_package(api.url, storefront)["package_id"], quantity=2)
        storefront.pay(session_of(engine, tenant_id, bought["order_id"]))
        storefront.flush()
        wait_status(engine, tenant_id, bought["order_id"], {"paid"})
    age(engine, tenant_id, "status_changed_at", "paid_at")
    yield storefront, bought
    quiesce(engine, tenant_id)


def age(engine, tenant_id: str, *columns: str) -> None:
    """Move the tenant's order timestamps two hours back (the clock cannot be, portably, in SQL)."""
    with engine.begin() as conn:
        for row in conn.execute(sa.select(orders).where(orders.c.tenant_id == tenant_id)).mappings().all():
            conn.execute(sa.update(orders).where(orders.c.tenant_id == tenant_id, orders.c.order_id == row["order_id"])
                         .values({c: row[c] - HOURS_AGO for c in columns}))


def run_hourly(warehouse, tenant_id) -> dg.ExecuteInProcessResult:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(storefront_partitions.name, [tenant_id])
    commerce = CommerceServicesResource(warehouse=warehouse, esim_providers=EsimProvidersResource(backoff_base_s=0.01))
    result = orders_job.execute_in_process(partition_key=tenant_id, instance=instance, resources={"commerce": commerce})
    assert result.success
    assert not result.get_asset_materialization_events()  # it claims no table: the API's are external assets
    return result


def recovered(result) -> dict:
    """What the recovery op counted (its output's metadata)."""
    event = next(e for e in result.all_node_events if e.is_successful_output and e.node_name == "recover_stuck_orders")
    return {k: v.value for k, v in event.event_specific_data.metadata.items()}


def test_stuck_paid_order_is_provisioned_and_counted(paid_but_unprovisioned, engine, warehouse, tenant_id):
    storefront, bought = paid_but_unprovisioned
    result = run_hourly(warehouse, tenant_id)
    stuck = recovered(result)
    assert (stuck["stuck"], stuck["still_stuck"], stuck["outcome_provisioned"]) == (1, 0, 1)
    order = order_row(engine, tenant_id, bought["order_id"])
    assert order["status"] == "provisioned"
    (mail,) = emails_to(storefront.sandbox, bought["order_id"])  # delivered by the job: no API is running
    assert len(mail["attachments"]) == 2
    again = run_hourly(warehouse, tenant_id)
    assert recovered(again)["stuck"] == 0


def test_a_paid_order_waits_for_its_paused_storefront_and_is_provisioned_once_it_is_back(
        paid_but_unprovisioned, engine, warehouse, warehouse_url, tenant_id):
    from commerce.orders import enqueue_effects
    from commerce.services import Services
    from commerce.settings import CommerceSettings
    from warehouse.tables.core import tenants
    from warehouse.tables.orders import provisioning_jobs

    storefront, bought = paid_but_unprovisioned
    services = Services(CommerceSettings(database_url=warehouse_url, secret_key="t", worker_enabled=False,
                                         tenant_cache_s=0))
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(tenants).where(tenants.c.tenant_id == tenant_id).values(status="paused"))
        assert services.provisioning.run_due(tenant_id=tenant_id, order_id=bought["order_id"]) == ["deferred"]
        with engine.connect() as conn:
            job = conn.execute(sa.select(provisioning_jobs).where(provisioning_jobs.c.tenant_id == tenant_id)).one()
        assert (job.state, job.last_error) == ("queued", "the shop is paused; its paid order waits for it")
        with engine.begin() as conn:  # a notice due while the shop is paused waits too, it is not dropped
            enqueue_effects(conn, tenant_id, bought["order_id"], ["slack_failed"])
        assert services.effects.run_due(tenant_id=tenant_id) == ["waiting"]
        with engine.connect() as conn:
            assert conn.execute(sa.select(order_effects.c.state).where(order_effects.c.tenant_id == tenant_id)
                                ).scalar_one() == "pending"
            conn.execute(sa.delete(order_effects).where(order_effects.c.tenant_id == tenant_id))
            conn.commit()
        with engine.begin() as conn:
            conn.execute(sa.update(tenants).where(tenants.c.tenant_id == tenant_id).values(status="active"))
    finally:
        services.close()
    run_hourly(warehouse, tenant_id)  # back: the hourly recovery does not wait for the backoff
    assert order_row(engine, tenant_id, bought["order_id"])["status"] == "provisioned"
    assert len(emails_to(storefront.sandbox, bought["order_id"])) == 1


def test_recovery_reopens_a_closed_job_whose_order_still_waits(paid_but_unprovisioned, engine, warehouse, tenant_id):
    from warehouse.tables.orders import provisioning_jobs

    storefront, bought = paid_but_unprovisioned
    with engine.begin() as conn:  # closed by an older release while the shop was paused
        conn.execute(sa.update(provisioning_jobs).where(provisioning_jobs.c.tenant_id == tenant_id)
                     .values(state="done", last_error="shop or order gone"))
    stuck = recovered(run_hourly(warehouse, tenant_id))
    assert (stuck["stuck"], stuck["still_stuck"], stuck["outcome_provisioned"]) == (1, 0, 1)
    assert order_row(engine, tenant_id, bought["order_id"])["status"] == "provisioned"


def test_order_still_unresolved_alerts_slack_once(paid_but_unprovisioned, engine, warehouse, tenant_id):
    storefront, bought = paid_but_unprovisioned
    storefront.control("PUT", "/faults/esimcard", json={"fail_next_5xx": 1})  # eSIM Card: "500", sold or not?
    run = run_hourly(warehouse, tenant_id)
    first = recovered(run)
    assert (first["stuck"], first["still_stuck"], first["outcome_deferred"]) == (1, 1, 1)
    (seen,) = [e.event_specific_data.asset_observation for e in run.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    assert seen.asset_key == dg.AssetKey(["api", "orders"])  # told on the orders table's page in the UI
    assert (seen.metadata["tenant"].value, seen.metadata["still_stuck"].value) == (tenant_id, 1)
    assert order_row(engine, tenant_id, bought["order_id"])["status"] == "processing"
    assert [a["outcome"] for a in attempts(engine, tenant_id)] == ["unknown"]
    storefront.control("PUT", "/faults/esimcard", json={"fail_next_5xx": 1})
    run_hourly(warehouse, tenant_id)
    alerts = [m for m in storefront.slack_messages() if "stuck" in m]
    assert len(alerts) == 1 and bought["order_id"] in alerts[0]
    with engine.connect() as conn:
        kinds = conn.execute(sa.select(order_effects.c.kind, order_effects.c.state)
                             .where(order_effects.c.tenant_id == tenant_id)).all()
    assert kinds == [("slack_stuck", "done")]
    httpx.delete(f"{storefront.sandbox}/_sandbox/faults")


def test_payments_whose_webhooks_never_came_are_settled_with_stripe(sandbox_reset, engine, warehouse, warehouse_url,
                                                                     tenant_id, monkeypatch):
    monkeypatch.setenv("STOREHOUSE_SHOP_SECRET_KEY", SECRET)
    with ApiThread(settings_for(warehouse_url, free_port(), worker_enabled=False)) as api:
        storefront = open_storefront(engine, warehouse, sandbox_reset.url, api.url, tenant_id)
        storefront.delivery(pause=True)  # Stripe cannot reach us; the customers never come back either
        package = first_package(api.url, storefront)["package_id"]
        paid, abandoned = buy(api.url, storefront, package), buy(api.url, storefront, package)
        storefront.pay(session_of(engine, tenant_id, paid["order_id"]))
        storefront.expire(session_of(engine, tenant_id, abandoned["order_id"]))
        age(engine, tenant_id, "created_at")
        try:
            stuck = recovered(run_hourly(warehouse, tenant_id))
            assert (stuck["unconfirmed_checkouts"], stuck["payment_paid"], stuck["payment_expired"]) == (2, 1, 1)
            assert stuck["outcome_provisioned"] == 1
            assert order_row(engine, tenant_id, paid["order_id"])["status"] == "provisioned"
            assert order_row(engine, tenant_id, abandoned["order_id"])["status"] == "expired"
            assert len(emails_to(storefront.sandbox, paid["order_id"])) == 1
            storefront.delivery(pause=False)  # the late webhooks change nothing more
            storefront.flush()
            assert order_row(engine, tenant_id, paid["order_id"])["status"] == "provisioned"
            assert recovered(run_hourly(warehouse, tenant_id))["unconfirmed_checkouts"] == 0
        finally:
            quiesce(engine, tenant_id)
