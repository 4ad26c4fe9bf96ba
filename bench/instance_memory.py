"""Memory of a Dagster instance built from its ref again and again in one process, with RSS as it goes.

A sensor that takes resources is evaluated with ``context.resources``, and Dagster builds those
with an instance made from the ref the daemon sends (``SensorEvaluationContext.instance`` →
``DagsterInstance.from_ref``), disposed of when the tick ends; so does a tick that logs or reads
``context.instance``, and every run-status sensor's. On ``dagster-postgres`` that is three storages,
each a new engine that reflects its tables over new connections. Our sensors did this about 20
times a minute in the code server until ``sensors/tick_context.py`` gave them one instance per
process; ``run_failure_alerts`` (a run-status sensor) still does it twice a minute. This builds N
instances in one process, each reading what our sensors read (a runs query, the dynamic
partitions), to show whether that memory levels off or leaks.

    python bench/instance_memory.py [--instances 2000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

On a scratch Dagster instance database (created and dropped).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_PG, machine, rss_mib, scratch_dagster_home  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=2000, help="instances built from the ref, one after another")
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server for the scratch instance database")
    args = parser.parse_args()
    with scratch_dagster_home(args.pg, prefix="storehouse_instance_mem"):
        import dagster as dg

        with dg.DagsterInstance.get() as instance:
            ref = instance.get_ref()
            print(f"{machine()} · dagster {dg.__version__} · {args.instances} instances from one ref", flush=True)
            t0 = time.perf_counter()
            for built in range(1, args.instances + 1):
                with dg.DagsterInstance.from_ref(ref) as tick:  # what one sensor tick does
                    tick.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": "none"}), limit=1)
                    tick.get_dynamic_partitions("tenants")
                if built in (1, 10, 50, 100) or built % 250 == 0:
                    gc.collect()
                    print(f"after {built:>5} instances: RSS {rss_mib():6.1f} MiB  "
                          f"({(time.perf_counter() - t0) / built * 1000:.0f} ms an instance)", flush=True)


if __name__ == "__main__":
    main()
