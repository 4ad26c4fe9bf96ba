"""Checkout creations per second and p50/p99 at fixed concurrency, beside a bare FastAPI endpoint.

Each checkout validates the body, reads the package, inserts a pending order, creates a Stripe
Checkout Session (SDK → the sandbox's Stripe, in its own process) and stores its URL. The bare
endpoint (same uvicorn, same worker count, same load generator, same run) is the ceiling; the
sandbox's Stripe alone (create session, same generator) is what checkout's one dependency can
do on the same cores. Every checkout carries its own Idempotency-Key.

    python bench/checkout_bench.py [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--workers 2]
                                   [--driver wrk|python]
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _storefront import (  # noqa: E402
    TENANT, SandboxProcess, api_server, arguments, bare_server, drive, free_port, header, load, open_storefront, pooled,
    prepared, warehouse,
)


def main() -> None:
    import httpx

    args = arguments(__doc__.splitlines()[0])
    with warehouse(args.pg) as url, SandboxProcess() as sandbox:
        header("checkout bench", args, url)
        port = free_port()
        open_storefront(url, sandbox.url, f"http://127.0.0.1:{port}")
        stripe_params = {"mode": "payment", "success_url": "https://x.test/ok", "customer_email": "bench@example.com",
                         "line_items[0][price_data][currency]": "usd", "line_items[0][quantity]": "1",
                         "line_items[0][price_data][unit_amount]": "399",
                         "line_items[0][price_data][product_data][name]": "Japan 1 GB"}
        stripe_direct = {"data": stripe_params, "headers": {"Authorization": "Bearer sk_test_bench_direct"}}
        bare_runs, api_runs, stripe_runs = [], [], []
        with bare_server(args.workers) as bare, api_server(url, args.workers, port, worker_enabled="false") as api:
            items = httpx.get(f"{api.url}/shops/{TENANT}/catalog").json()["items"]
            body = {"package_id": items[0]["package_id"], "quantity": 1, "email": "bench@example.com"}
            drive(f"{api.url}/shops/{TENANT}/checkout", [{"json": body}] * 20, 4, lambda r: r.status_code == 201)
            for _ in range(args.rounds):
                bare_runs.append(load(args, f"{bare.url}/bare", [{"json": body}] * prepared(args, 20_000),
                                      lambda r: r.status_code == 200))
                api_runs.append(load(args, f"{api.url}/shops/{TENANT}/checkout",
                                     [{"json": body, "headers": {"Idempotency-Key": uuid.uuid4().hex}}
                                      for _ in range(prepared(args, 2_000))], lambda r: r.status_code == 201))
                stripe_runs.append(load(args, f"{sandbox.url}/stripe/v1/checkout/sessions",
                                        [stripe_direct] * prepared(args, 5_000), lambda r: r.status_code == 200))
    ceiling, checkouts, stripe_alone = pooled(bare_runs), pooled(api_runs), pooled(stripe_runs)
    print(ceiling.line("bare FastAPI POST (ceiling)"))
    print(checkouts.line("checkout (order + Stripe session)"))
    print(stripe_alone.line("sandbox Stripe alone: create session"))
    print(f"\ncheckout / bare = {checkouts.rate / ceiling.rate:.2f}  (target ≥ 0.30); "
          f"checkout / sandbox Stripe alone = {checkouts.rate / stripe_alone.rate:.2f}")


if __name__ == "__main__":
    main()
