"""Signed ``checkout.session.completed`` events for studio invoices through the real webhook route,
in process (FastAPI's TestClient, one caller): latency of the first delivery (the invoice paid, its
payment, activity and event recorded in one transaction) and of a duplicate (verified, found
recorded, nothing changed).

    python bench/studio_webhook_bench.py [--pg postgresql://postgres@127.0.0.1/sh_studiopay] [--n 300]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", help="a PostgreSQL URL (default: a fresh SQLite file)")
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    from api.app import create_app
    from resources.warehouse import engine_for
    from tests.api_storefront import settings_for
    from tests.studio_world import WHSEC, make_invoice, make_studio
    from warehouse.migrate import upgrade

    url = args.pg or f"sqlite:///{tempfile.mkdtemp(prefix='studio-bench-')}/warehouse.db"
    upgrade(url)
    engine = engine_for(url)
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    studio = make_studio(engine, tenant)
    invoices = [make_invoice(engine, studio) for _ in range(args.n)]
    bodies = []
    for n, invoice_id in enumerate(invoices):
        bodies.append(json.dumps({"id": f"evt_{n}", "object": "event", "type": "checkout.session.completed",
                                  "created": int(time.time()), "data": {"object": {
                                      "id": f"cs_test_{n}", "object": "checkout.session", "status": "complete",
                                      "payment_status": "paid", "amount_total": 11000, "currency": "aud",
                                      "payment_intent": f"pi_{n}", "metadata": {
                                          "invoiceId": str(invoice_id), "invoiceNumber": "INV", "tenant_id": tenant}}}
                                  }).encode())

    def signed(body: bytes) -> dict:
        t = int(time.time())
        sig = hmac.new(WHSEC.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return {"Stripe-Signature": f"t={t},v1={sig}", "Content-Type": "application/json"}

    # beside them, the same number of events that are not the studio's (no order of the shop's
    # either): what the shop's own path costs on this machine, for comparison
    others = [body.replace(b'"invoiceId"', b'"unrelated"').replace(b'"evt_', b'"evt_other_') for body in bodies]
    with TestClient(create_app(settings_for(url, 8000, worker_enabled=False), engine)) as client:
        for label, expected, sent in (("first delivery", "applied", bodies), ("duplicate", "duplicate", bodies),
                                      ("not the studio's (shop: no_order)", "no_order", others)):
            took = []
            for body in sent:
                start = time.perf_counter()
                answer = client.post(f"/studios/{tenant}/webhooks/stripe", content=body, headers=signed(body))
                took.append(time.perf_counter() - start)
                assert answer.json()["outcome"] == expected, answer.text
            took.sort()
            print(f"{'PostgreSQL' if args.pg else 'SQLite'} {label}: {len(took)} events, "
                  f"{len(took) / sum(took):.0f}/s, p50 {statistics.median(took) * 1000:.1f} ms, "
                  f"p95 {took[int(len(took) * 0.95)] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
