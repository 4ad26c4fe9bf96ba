"""Provisioning latency per order, p50/p99: healthy, and with the primary provider down, its
breaker closed (every order tries it first) versus open (skipped without a call).

Each scenario is its own shop (its own breakers); orders are paid and queued, then provisioned
by the shop's own provisioning service (in this process) against the sandbox's providers (in
their own process), one order per scenario in turn, so a busy machine slows every scenario
alike. With eSIM Card down, the order is served by the next provider, and providers differ by
protocol: MobiMatter (next in the default order) takes two calls per order (create, then
complete, with its order id made durable in between) where eSIM Card and Airalo take one. So
the open breaker is measured twice: failing over in the default order (to MobiMatter) and to
Airalo, each beside that provider as primary with nothing down, which separates what skipping
the open breaker costs from what the fallback's own protocol costs.

Target (issue 15): with the primary's breaker open, p99 ≤ 1.2× the p99 of the provider it fails
over to when that provider is itself primary (same run, scenarios interleaved order by order).

    python bench/provisioning_bench.py [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--requests 200]
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_avg  # noqa: E402
from _storefront import SandboxProcess, arguments, header, open_storefront, warehouse  # noqa: E402

TARGET = 1.2

HEALTHY = "healthy (eSIM Card serves)"
ORDER = ["esimcard", "mobimatter", "airalo"]  # the default priority
TO_AIRALO = ["esimcard", "airalo", "mobimatter"]
OPEN_MM, MM_PRIMARY = "eSIM Card down, open → MobiMatter", "MobiMatter as primary"
OPEN_AIRALO, AIRALO_PRIMARY = "eSIM Card down, open → Airalo", "Airalo as primary"
SCENARIOS = {  # name: (eSIM Card down, breaker threshold, failover priority)
    HEALTHY: (False, 3, ORDER),
    "eSIM Card down, breaker closed": (True, 10**9, ORDER),
    OPEN_MM: (True, 3, ORDER),
    MM_PRIMARY: (False, 3, ["mobimatter", "esimcard", "airalo"]),
    OPEN_AIRALO: (True, 3, TO_AIRALO),
    AIRALO_PRIMARY: (False, 3, ["airalo", "esimcard", "mobimatter"]),
}


def queue_orders(engine, tenant: str, count: int) -> list[str]:
    import sqlalchemy as sa

    from commerce import orders as states
    from warehouse.tables.esim import esim_packages
    from warehouse.tables.orders import orders
    from warehouse.types import now_utc

    p = esim_packages.c
    with engine.connect() as conn:
        package = conn.execute(sa.select(esim_packages).where(
            p.tenant_id == tenant, p.provider == "esimcard", p.country_code == "JP", p.data_mb == 1024,
            p.validity_days == 7)).mappings().first()
    ids = []
    with engine.begin() as conn:
        for _ in range(count):
            order_id = "ord_" + uuid.uuid4().hex[:24]
            conn.execute(sa.insert(orders).values(
                tenant_id=tenant, order_id=order_id, status="paid", email="bench@example.com", provider="esimcard",
                provider_package_id=package["provider_package_id"], package_name=package["name"], country_code="JP",
                data_mb=1024, unlimited=False, validity_days=7, quantity=1, unit_price=package["price"],
                amount_total=package["price"], currency="USD", request_hash="bench", paid_at=now_utc()))
            states.enqueue_provisioning(conn, tenant, order_id)
            ids.append(order_id)
    return ids


def provision_one(services, tenant: str, order_id: str) -> float:
    started = time.perf_counter()
    outcome = services.provisioning.run_due(tenant_id=tenant, order_id=order_id)
    took = time.perf_counter() - started
    assert outcome == ["provisioned"], outcome
    return took


def main() -> None:
    import httpx

    from commerce.services import Services
    from commerce.settings import CommerceSettings

    args = arguments(__doc__.splitlines()[0], requests=200)
    with warehouse(args.pg) as url, SandboxProcess() as sandbox:
        header("provisioning bench", args, url)
        for provider in ORDER:  # enough units for every order of the run
            for package_id in httpx.get(f"{sandbox.url}/_sandbox/{provider}/stock").json()["packages"]:
                httpx.put(f"{sandbox.url}/_sandbox/{provider}/stock/{package_id}", json={"units": 100_000})
        loads = [load_avg()]
        runs = {}
        for i, (name, (down, threshold, priority)) in enumerate(SCENARIOS.items()):
            tenant = f"bench-provision-{i}"
            open_storefront(url, sandbox.url, "http://127.0.0.1:9", tenant)
            services = Services(CommerceSettings(database_url=url, secret_key="bench", worker_enabled=False,
                                            breaker_failures=threshold, breaker_reset_s=3600,
                                            provider_priority=priority))
            runs[name] = (services, tenant, down, queue_orders(services.engine, tenant, args.requests + 5))
        took: dict[str, list[float]] = {name: [] for name in SCENARIOS}
        for n in range(args.requests + 5):  # the first five warm up pools and tokens, and open the breaker
            for name, (services, tenant, down, order_ids) in runs.items():
                httpx.put(f"{sandbox.url}/_sandbox/faults/esimcard", json={"down": down})
                seconds = provision_one(services, tenant, order_ids[n])
                if n >= 5:
                    took[name].append(seconds)
            if n % max(1, args.requests // 4) == 0:
                loads.append(load_avg())
        loads.append(load_avg())
        httpx.delete(f"{sandbox.url}/_sandbox/faults")
        for services, *_ in runs.values():
            services.close()
    p99 = {}
    for name, values in took.items():
        q = statistics.quantiles(values, n=100, method="inclusive")
        p99[name] = q[98]
        print(f"{name:<34} p50 {q[49] * 1000:7.1f} ms   p99 {q[98] * 1000:7.1f} ms   ({len(values)} orders)")
    for open_, primary, what in ((OPEN_MM, MM_PRIMARY, "default order, to MobiMatter"),
                                 (OPEN_AIRALO, AIRALO_PRIMARY, "to Airalo")):
        print(f"\nbreaker open, {what}: p99 / {primary} p99 = {p99[open_] / p99[primary]:.2f}  (target ≤ {TARGET}); "
              f"p99 / healthy (eSIM Card) p99 = {p99[open_] / p99[HEALTHY]:.2f}")
    print(f"load average (1/5/15 min) through the run: {' | '.join(loads)}")


if __name__ == "__main__":
    main()
