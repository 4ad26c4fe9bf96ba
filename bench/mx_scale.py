"""Benchmark 3: the same MX Merchant tenant at 1,000,000 transactions, no added latency.

Prints rows/s and our peak RSS (target < 1 GiB: the sync streams pages and invoices, never the
whole set). Same driver and options as ``mx_end_to_end.py`` (sandbox in its own process, detail
concurrency 16); the bare-httpx ceiling is off by default here (``--ceiling`` to add it).

    python bench/mx_scale.py              # SQLite
    python bench/mx_scale.py --pg         # PostgreSQL
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mx_end_to_end import main as end_to_end  # noqa: E402


def main() -> None:
    argv = sys.argv[1:]
    if "--ceiling" in argv:
        argv.remove("--ceiling")
        ceiling = True
    else:
        ceiling = False
    out = end_to_end(argv, defaults={"transactions": 1_000_000, "latency_ms": 0.0, "ceiling": ceiling,
                                     "title": "mx_scale"})
    rss = out["rss"]
    print(f"  peak RSS {rss:,.0f} MiB → {'met' if rss < 1024 else 'MISSED'} (target < 1,024 MiB)")


if __name__ == "__main__":
    main()
