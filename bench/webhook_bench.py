"""Signed Stripe webhook events accepted per second, beside the fair ceiling.

Every event is signed with the shop's own secret and verified on its raw bytes, recorded once in
``webhook_events`` and applied in the same transaction. A quarter of them are the
``checkout.session.completed`` of a pending order (the order becomes paid and its provisioning
job is queued; the workers are off, so this measures ingest only), the rest the events Stripe
sends around it. Then the events that were delivered are delivered again (duplicates: verified,
found recorded, answered, nothing changed).

The ceiling (issue 15) is a minimal FastAPI handler (``_ceiling_app``) that verifies the
signature, inserts the event and updates its order in one transaction, on the same database,
with the same uvicorn, worker count and load generator; it gets events of the same kinds and
sizes over orders of its own. Ceiling and API take turns round after round in the same run.

    python bench/webhook_bench.py [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--workers 2]
                                  [--driver wrk|python] [--rounds 3] [--seconds 5]
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_avg  # noqa: E402
from _storefront import (  # noqa: E402
    TENANT, SandboxProcess, api_server, arguments, ceiling_server, free_port, header, load, open_storefront, pooled,
    prepared, warehouse,
)

TARGET = 0.3


def events(warehouse_url: str, count: int) -> list[dict]:
    """``count`` events over ``count // 4`` pending orders inserted for the purpose."""
    import sqlalchemy as sa

    from resources.warehouse import engine_for
    from warehouse.tables.orders import orders

    out = []
    engine = engine_for(warehouse_url)
    orders_left = count // 4
    while orders_left:  # short transactions: a server finishing the last measurement's
        batch, orders_left = min(500, orders_left), orders_left - min(500, orders_left)  # requests never waits
        with engine.begin() as conn:
            for _ in range(batch):
                order_id, intent = "ord_" + uuid.uuid4().hex[:24], "pi_" + uuid.uuid4().hex[:24]
                conn.execute(sa.insert(orders).values(
                    tenant_id=TENANT, order_id=order_id, status="pending", email="bench@example.com", provider="esimcard",
                    provider_package_id="x", package_name="Japan 1 GB", quantity=1, unit_price=Decimal("4.99"),
                    amount_total=Decimal("4.99"), currency="USD", request_hash="bench"))
                meta = {"order_id": order_id, "tenant_id": TENANT}
                pi = {"id": intent, "object": "payment_intent", "amount": 499, "amount_received": 499, "currency": "usd",
                      "metadata": meta, "status": "succeeded", "latest_charge": "ch_" + intent[3:]}
                session = {"id": "cs_test_" + uuid.uuid4().hex, "object": "checkout.session", "amount_total": 499,
                           "currency": "usd", "metadata": meta, "client_reference_id": order_id, "payment_intent": intent,
                           "payment_status": "paid", "status": "complete"}
                for kind, obj in (("payment_intent.created", pi), ("charge.succeeded", {**pi, "object": "charge"}),
                                  ("payment_intent.succeeded", pi), ("checkout.session.completed", session)):
                    out.append({"id": "evt_" + uuid.uuid4().hex, "object": "event", "type": kind, "created": int(time.time()),
                                "api_version": "2026-10-28", "data": {"object": obj}, "livemode": False})
    return out


def recorded(warehouse_url: str) -> int:
    import sqlalchemy as sa

    from resources.warehouse import engine_for
    from warehouse.tables.orders import webhook_events

    with engine_for(warehouse_url).connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(webhook_events)
                            .where(webhook_events.c.tenant_id == TENANT)).scalar_one()


def signed(event: dict, secret: str) -> dict:
    body = json.dumps(event, indent=2).encode()
    t = int(time.time())
    sig = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"content": body, "headers": {"Content-Type": "application/json", "Stripe-Signature": f"t={t},v1={sig}"}}


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    with warehouse(args.pg) as url, SandboxProcess() as sandbox:
        header("webhook ingest bench", args, url)
        port = free_port()
        secret = open_storefront(url, sandbox.url, f"http://127.0.0.1:{port}")
        ceiling_runs, first_runs, again_runs, loads = [], [], [], []
        endpoint = f"http://127.0.0.1:{port}/shops/{TENANT}/webhooks/stripe"
        with ceiling_server(url, args.workers, webhook_secret=secret) as ceiling, \
                api_server(url, args.workers, port, worker_enabled="false"):
            for _ in range(args.rounds):
                loads.append(load_avg())
                ceiling_runs.append(load(args, f"{ceiling.url}/webhook",
                                         [signed(e, secret) for e in events(url, prepared(args, 8_000))],
                                         lambda r: r.status_code == 200))
                requests = [signed(e, secret) for e in events(url, prepared(args, 3_000))]
                before = recorded(url)
                first = load(args, endpoint, requests,
                             lambda r: r.status_code == 200 and r.json()["outcome"] != "duplicate")
                first_runs.append(first)
                delivered = recorded(url) - before
                if delivered < first.done:  # wrk reads status codes only: the table says what was new
                    raise RuntimeError(f"{first.done} events accepted but only {delivered} recorded")
                again_runs.append(load(args, endpoint, requests[:delivered],
                                       lambda r: r.status_code == 200 and r.json()["outcome"] == "duplicate",
                                       repeat=True))
            loads.append(load_avg())
    ceiling, accepted, again = pooled(ceiling_runs), pooled(first_runs), pooled(again_runs)
    print(ceiling.line("ceiling: verify, insert, update order"))
    print(accepted.line("signed events, first delivery"))
    print(again.line("same events again (duplicates)"))
    ratios = [a.done / a.seconds / (c.done / c.seconds) for a, c in zip(first_runs, ceiling_runs)]
    print(f"\nwebhook / ceiling = {accepted.rate / ceiling.rate:.2f}  (target ≥ {TARGET}; per round "
          f"{' '.join(f'{r:.2f}' for r in ratios)})\nload average (1/5/15 min) at each round's start and the end: "
          f"{' | '.join(loads)}")


if __name__ == "__main__":
    main()
