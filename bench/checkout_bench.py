"""Checkout creations per second and p50/p99 at fixed concurrency, beside the fair ceiling.

Each checkout validates the body, reads the package, inserts a pending order, creates a Stripe
Checkout Session (SDK → the sandbox's Stripe, in its own process) and stores its URL. The
ceiling (issue 15) is a minimal FastAPI handler (``_ceiling_app``) that inserts one order row and
creates one Checkout Session on the same sandbox through the same stripe SDK: same database, same
uvicorn and worker count, same load generator, measured in the same run with the two taking
turns round after round, so a busy machine weighs on both alike. Every checkout carries its own
Idempotency-Key. The sandbox's Stripe alone (create session, same generator) is printed too: it
bounds both.

    python bench/checkout_bench.py [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--workers 2]
                                   [--driver wrk|python] [--rounds 3] [--seconds 5]
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_avg  # noqa: E402
from _storefront import (  # noqa: E402
    TENANT, SandboxProcess, api_server, arguments, ceiling_server, drive, free_port, header, load, open_storefront,
    pooled, prepared, warehouse,
)

TARGET = 0.5


def main() -> None:
    import httpx

    args = arguments(__doc__.splitlines()[0])
    with warehouse(args.pg) as url, SandboxProcess() as sandbox:
        header("checkout bench", args, url)
        port = free_port()
        open_storefront(url, sandbox.url, f"http://127.0.0.1:{port}")
        key = f"sk_test_{TENANT.replace('-', '_')}"
        stripe_params = {"mode": "payment", "success_url": "https://x.test/ok", "customer_email": "bench@example.com",
                         "line_items[0][price_data][currency]": "usd", "line_items[0][quantity]": "1",
                         "line_items[0][price_data][unit_amount]": "399",
                         "line_items[0][price_data][product_data][name]": "Japan 1 GB"}
        stripe_direct = {"data": stripe_params, "headers": {"Authorization": f"Bearer {key}"}}
        ceiling_runs, api_runs, stripe_runs, loads = [], [], [], []
        with ceiling_server(url, args.workers, stripe_url=f"{sandbox.url}/stripe", stripe_key=key) as ceiling, \
                api_server(url, args.workers, port, worker_enabled="false") as api:
            items = httpx.get(f"{api.url}/shops/{TENANT}/catalog").json()["items"]
            body = {"package_id": items[0]["package_id"], "quantity": 1, "email": "bench@example.com"}
            drive(f"{api.url}/shops/{TENANT}/checkout", [{"json": body}] * 20, 4, lambda r: r.status_code == 201)
            drive(f"{ceiling.url}/checkout", [{"json": body}] * 20, 4, lambda r: r.status_code == 201)
            for _ in range(args.rounds):
                loads.append(load_avg())
                ceiling_runs.append(load(args, f"{ceiling.url}/checkout", [{"json": body}] * prepared(args, 5_000),
                                         lambda r: r.status_code == 201, repeat=True))
                api_runs.append(load(args, f"{api.url}/shops/{TENANT}/checkout",
                                     [{"json": body, "headers": {"Idempotency-Key": uuid.uuid4().hex}}
                                      for _ in range(prepared(args, 5_000))], lambda r: r.status_code == 201))
                stripe_runs.append(load(args, f"{sandbox.url}/stripe/v1/checkout/sessions",
                                        [stripe_direct] * prepared(args, 5_000), lambda r: r.status_code == 200,
                                        repeat=True))
            loads.append(load_avg())
    ceiling, checkouts, stripe_alone = pooled(ceiling_runs), pooled(api_runs), pooled(stripe_runs)
    print(ceiling.line("ceiling: order row + Stripe session"))
    print(checkouts.line("checkout (our API)"))
    print(stripe_alone.line("sandbox Stripe alone: create session"))
    ratios = [a.done / a.seconds / (c.done / c.seconds) for a, c in zip(api_runs, ceiling_runs)]
    print(f"\ncheckout / ceiling = {checkouts.rate / ceiling.rate:.2f}  (target ≥ {TARGET}; per round "
          f"{' '.join(f'{r:.2f}' for r in ratios)}); checkout / sandbox Stripe alone = "
          f"{checkouts.rate / stripe_alone.rate:.2f}\nload average (1/5/15 min) at each round's start and the end: "
          f"{' | '.join(loads)}")


if __name__ == "__main__":
    main()
