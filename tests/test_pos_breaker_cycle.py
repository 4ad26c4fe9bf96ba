"""A POS tenant's breaker through a whole outage, driven by real syncs against the sandbox:
closed -> open (last good data kept, no calls) -> half-open trial that fails -> open again ->
half-open trial that succeeds -> closed, with the change made during the outage loaded.

The cool-down is the resource's ``breaker_reset_s``: an hour while the test checks the breaker
stays shut, a fraction of a second (and a short wait) when it checks what happens after it."""

import time

import httpx
import pytest

from pipelines.pos import pos_assets
from resources.breaker import CLOSED, OPEN, SqlBreakerStore
from resources.dagster_resources import PosClientsResource
from resources.pos import POS_SYSTEMS
from tests.pos_accounts import native_id, new_account
from tests.test_pos_assets import connect, materialize, meta, rows
from warehouse.tables.pos import inventory, products

INVENTORY = [a for a in pos_assets if a.key.path[-1] == "inventory"]
COOLING = PosClientsResource(max_attempts=1, breaker_failure_threshold=1, breaker_reset_s=3600)
COOL_S = 0.3
COOLED = PosClientsResource(max_attempts=1, breaker_failure_threshold=1, breaker_reset_s=COOL_S)


def calls(sandbox, system: str) -> int:
    return httpx.get(f"{sandbox.url}/_sandbox/faults", timeout=10).json()[system]["calls"]


def down(sandbox, system: str, is_down: bool) -> None:
    httpx.put(f"{sandbox.url}/_sandbox/faults/{system}", json={"down": is_down}, timeout=10).raise_for_status()


def stock(engine, tenant_id, product_id) -> int:
    live = rows(engine, inventory, tenant_id, inventory.c.product_id == product_id, inventory.c.deleted_at.is_(None))
    return int(sum(r["quantity"] for r in live))


@pytest.mark.parametrize("system", POS_SYSTEMS)
def test_breaker_opens_in_an_outage_then_a_trial_closes_it_and_the_data_refreshes(sandbox_reset, warehouse, engine,
                                                                                   tenant_id, system):
    sandbox = sandbox_reset
    account = new_account(sandbox.url, system, products=30, customers=2)
    connect(engine, tenant_id, account)
    assert materialize(warehouse, tenant_id, clients=COOLING).success
    target = sorted(rows(engine, products, tenant_id), key=lambda r: r["product_id"])[2]
    before = stock(engine, tenant_id, target["product_id"])
    store = SqlBreakerStore(engine)

    down(sandbox, system, True)
    assert materialize(warehouse, tenant_id, INVENTORY, clients=COOLING).success  # the failure opens it
    assert store.load(tenant_id, system).state == OPEN
    made = calls(sandbox, system)
    for _ in range(2):
        result = materialize(warehouse, tenant_id, INVENTORY, clients=COOLING)
        assert result.success and meta(result, "pos__inventory")["stale"] is True
    assert calls(sandbox, system) == made  # open and cooling: not called
    assert stock(engine, tenant_id, target["product_id"]) == before  # last good data kept

    time.sleep(COOL_S + 0.1)  # cooled, still down: the one trial is made, fails, and opens it again
    result = materialize(warehouse, tenant_id, INVENTORY, clients=COOLED)
    assert result.success and meta(result, "pos__inventory")[f"{system}_status"] == "circuit_open"
    assert calls(sandbox, system) > made
    assert store.load(tenant_id, system).state == OPEN

    down(sandbox, system, False)
    changed = 2 if before != 2 else 3  # small: Treez caps what it reports at 30
    account.set_stock(native_id(target), changed)
    made = calls(sandbox, system)
    assert materialize(warehouse, tenant_id, INVENTORY, clients=COOLING).success  # reopened just now: cooling
    assert calls(sandbox, system) == made and stock(engine, tenant_id, target["product_id"]) == before

    time.sleep(COOL_S + 0.1)  # cooled, back up: the trial runs, succeeds, closes the breaker
    result = materialize(warehouse, tenant_id, INVENTORY, clients=COOLED)
    assert result.success and meta(result, "pos__inventory")[f"{system}_status"] == "synced"
    assert calls(sandbox, system) > made
    assert store.load(tenant_id, system).state == CLOSED
    assert stock(engine, tenant_id, target["product_id"]) == changed

    account.set_stock(native_id(target), 1)  # closed: every later run calls as usual
    assert materialize(warehouse, tenant_id, INVENTORY, clients=COOLING).success
    assert stock(engine, tenant_id, target["product_id"]) == 1
