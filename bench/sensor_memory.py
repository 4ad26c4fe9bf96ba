"""Memory of our sensors: each evaluated many times in one process, as the code server evaluates
them at every tick, with the process's RSS printed as it goes.

The soak sees the Dagster code server's RSS grow in its first minutes; this tells apart our sensor
code (run in the code server at each tick) from the rest of that process.

    python bench/sensor_memory.py [--rounds 600]

On a scratch SQLite warehouse (migrated, empty) and an ephemeral Dagster instance.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, rss_mib  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=600, help="evaluations of each sensor")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ.update({"DATABASE_URL": f"sqlite:///{home}/warehouse.db", "STOREHOUSE_HOME": f"{home}/storehouse"})
        import dagster as dg

        from pipelines.definitions import build_defs
        from warehouse.migrate import upgrade

        upgrade(os.environ["DATABASE_URL"])
        defs = build_defs()
        sensors = [s for s in defs.get_repository_def().sensor_defs if s.sensor_type.value == "STANDARD"]
        instance = dg.DagsterInstance.ephemeral()
        print(f"{machine()} · sensors: {', '.join(s.name for s in sensors)}")
        cursors: dict[str, str | None] = {}
        for done in range(1, args.rounds + 1):
            for sensor in sensors:
                with dg.build_sensor_context(instance=instance, cursor=cursors.get(sensor.name),
                                             resources=defs.resources, definitions=defs,
                                             sensor_name=sensor.name) as context:
                    cursors[sensor.name] = sensor.evaluate_tick(context).cursor
            if done in (1, 10, 50) or done % 100 == 0:
                gc.collect()
                print(f"after {done:>4} evaluations of each: RSS {rss_mib():.1f} MiB", flush=True)


if __name__ == "__main__":
    main()
