"""What one tick of each sensor costs the code server: CPU, Dagster instances built, PostgreSQL
connections opened, with each sensor evaluated as the code server evaluates it for the daemon
(``get_external_sensor_execution`` with the daemon's instance ref, on the real Definitions).

A tick whose context builds a Dagster instance from the ref pays for three ``dagster-postgres``
storages: their engines, table reflection and connections (``sensors/tick_context.py``).

    python bench/sensor_ticks.py [--rounds 30] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

On a scratch Dagster instance database (created and dropped) and a scratch SQLite warehouse with
one tenant connected to MX Merchant and partitioned.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_PG, machine, scratch_dagster_home  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="ticks of each sensor")
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server for the scratch instance database")
    args = parser.parse_args()
    with scratch_dagster_home(args.pg, prefix="storehouse_sensor_ticks") as home:
        os.environ.update({"DATABASE_URL": f"sqlite:///{home}/warehouse.db", "STOREHOUSE_HOME": f"{home}/storehouse"})
        import dagster as dg
        import psycopg2
        from dagster._core.definitions.sensor_definition import SensorExecutionData
        from dagster._grpc.impl import get_external_sensor_execution

        from assets.partitions import mx_merchant_partitions
        from pipelines.definitions import build_defs
        from warehouse.db import make_engine
        from warehouse.migrate import upgrade
        from warehouse.tenants import add_tenant, set_connection

        upgrade(os.environ["DATABASE_URL"])
        with make_engine(os.environ["DATABASE_URL"]).begin() as conn:
            add_tenant(conn, "bench-tenant")
            set_connection(conn, "bench-tenant", "mx_merchant", "http://x", {"merchant_id": 1})
        counts = {"instances": 0, "connections": 0}
        from_ref, connect = dg.DagsterInstance.from_ref, psycopg2.connect

        def counting_from_ref(ref):
            counts["instances"] += 1
            return from_ref(ref)

        def counting_connect(*a, **kw):
            counts["connections"] += 1
            return connect(*a, **kw)

        dg.DagsterInstance.from_ref = staticmethod(counting_from_ref)
        psycopg2.connect = counting_connect
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions(mx_merchant_partitions.name, ["bench-tenant"])
            ref = instance.get_ref()
            repo = build_defs().get_repository_def()
            names = sorted(s.name for s in repo.sensor_defs)
            cursors: dict[str, str | None] = {}
            for name in names:  # a first tick of each: what a process does once (imports, its instance)
                cursors[name] = get_external_sensor_execution(repo, None, ref, name, None, None, None, None, None).cursor
            print(f"{machine()} · dagster {dg.__version__} · {args.rounds} ticks of each sensor after a first one")
            print(f"{'sensor':<26} {'CPU ms/tick':>12} {'instances/tick':>15} {'PG connections/tick':>20}")
            for name in names:
                before = dict(counts)
                cpu = time.process_time()
                for _ in range(args.rounds):
                    data = get_external_sensor_execution(repo, None, ref, name, None, None, cursors[name],
                                                         None, None)
                    assert isinstance(data, SensorExecutionData), data
                    cursors[name] = data.cursor
                per_tick = (time.process_time() - cpu) * 1000 / args.rounds
                print(f"{name:<26} {per_tick:>12.1f} {(counts['instances'] - before['instances']) / args.rounds:>15.2f} "
                      f"{(counts['connections'] - before['connections']) / args.rounds:>20.2f}", flush=True)


if __name__ == "__main__":
    main()
